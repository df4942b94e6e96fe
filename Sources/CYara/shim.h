#ifndef QUARRY_CYARA_SHIM_H
#define QUARRY_CYARA_SHIM_H
#include <yara.h>

/* libyara exposes rule data through macros and reference unions that Swift cannot use directly;
   these accessors flatten them. */
static inline const char *quarry_rule_identifier(YR_RULE *r) { return r->identifier; }
static inline const char *quarry_rule_namespace(YR_RULE *r) { return r->ns ? r->ns->name : ""; }
static inline const char *quarry_rule_tags(YR_RULE *r) { return r->tags; }
static inline YR_META *quarry_rule_first_meta(YR_RULE *r) { return r->metas; }
static inline YR_META *quarry_meta_next(YR_META *m) { return META_IS_LAST_IN_RULE(m) ? NULL : m + 1; }
static inline const char *quarry_meta_identifier(YR_META *m) { return m->identifier; }
static inline int quarry_meta_type(YR_META *m) { return m->type; }
static inline const char *quarry_meta_string(YR_META *m) { return m->string; }
static inline int64_t quarry_meta_integer(YR_META *m) { return m->integer; }
static inline YR_STRING *quarry_rule_first_string(YR_RULE *r) { return r->strings; }
static inline YR_STRING *quarry_string_next(YR_STRING *s) { return STRING_IS_LAST_IN_RULE(s) ? NULL : s + 1; }
static inline const char *quarry_string_identifier(YR_STRING *s) { return s->identifier; }
static inline YR_MATCH *quarry_first_match(YR_SCAN_CONTEXT *c, YR_STRING *s) { return c->matches[s->idx].head; }
static inline YR_MATCH *quarry_match_next(YR_MATCH *m) { return m->next; }
static inline int quarry_match_is_private(YR_MATCH *m) { return m->is_private; }
static inline int64_t quarry_match_offset(YR_MATCH *m) { return m->base + m->offset; }
static inline int32_t quarry_match_length(YR_MATCH *m) { return m->match_length; }
static inline const uint8_t *quarry_match_data(YR_MATCH *m) { return m->data; }
static inline int32_t quarry_match_data_length(YR_MATCH *m) { return m->data_length; }
static inline int quarry_meta_type_integer(void) { return META_TYPE_INTEGER; }
static inline int quarry_meta_type_boolean(void) { return META_TYPE_BOOLEAN; }
static inline int quarry_msg_rule_matching(void) { return CALLBACK_MSG_RULE_MATCHING; }
#endif
