import Foundation

/// A declared artifact parameter as the console's forms need it (no Artifacts dependency here:
/// the server maps its definitions onto this).
public struct ParameterSpec: Sendable {
    public var name: String
    public var type: String
    public var defaultValue: String
    public var description: String
    public var choices: [String]
    public init(name: String, type: String, defaultValue: String, description: String, choices: [String]) {
        self.name = name
        self.type = type
        self.defaultValue = defaultValue
        self.description = description
        self.choices = choices
    }
}

/// One parameter as a form control chosen by its type: a yes/no select for bool, a number field
/// for int and float, a select for choices (several for multichoice), a text area for the
/// multi-line kinds (csv, json, yaml, yara, regex lists, long defaults), a line otherwise.
public struct ParameterFieldView: Sendable {
    public struct Choice: Sendable {
        public var value: String
        public var selected: Bool
    }

    public var name: String
    /// The form field's name (`p.` + the parameter name, so no parameter can collide with csrf).
    public var field: String
    public var id: String
    public var type: String
    public var description: String
    public var value: String
    public var error: String?
    public var isBool = false
    public var isNumber = false
    public var isChoice = false
    public var isMulti = false
    public var isText = false
    public var isLine = false
    public var step = "1"
    public var choices: [Choice] = []

    static let multiline: Set<String> = ["csv", "json", "json_array", "yaml", "yara", "regex_array", "artifactset"]

    /// The field for `spec` showing `value` (the submitted text, or the default).
    public init(_ spec: ParameterSpec, value: String?, error: String?, index: Int) {
        name = spec.name
        field = "p." + spec.name
        id = "param-\(index)"
        type = spec.type.isEmpty ? "string" : spec.type
        description = spec.description
        let shown = value ?? spec.defaultValue
        self.value = shown
        self.error = error
        switch type {
        case "bool":
            isBool = true
            let yes = ["Y", "YES", "TRUE", "OK", "1"].contains(shown.uppercased())
            choices = [Choice(value: "Y", selected: yes), Choice(value: "N", selected: !yes)]
        case "int", "int64", "integer":
            isNumber = true
        case "float":
            isNumber = true
            step = "any"
        case "choices" where !spec.choices.isEmpty:
            isChoice = true
            choices = spec.choices.map { Choice(value: $0, selected: $0 == shown) }
        case "multichoice" where !spec.choices.isEmpty:
            isMulti = true
            let picked = Set(ParameterFieldView.jsonStrings(shown))
            choices = spec.choices.map { Choice(value: $0, selected: picked.contains($0)) }
        default:
            if Self.multiline.contains(type) || shown.contains("\n") || shown.count > 120 { isText = true } else { isLine = true }
        }
    }

    /// The strings of a JSON list (multichoice values); empty when it is not one.
    static func jsonStrings(_ text: String) -> [String] {
        guard let data = text.data(using: .utf8), let list = try? JSONSerialization.jsonObject(with: data) as? [Any] else { return [] }
        return list.compactMap { $0 as? String }
    }
}

/// An artifact in the collect page's picker.
public struct ArtifactChoiceView: Sendable {
    public var name: String
    public var description: String
    public var link: String
    public var selected: Bool
}

/// The hunt settings the new-hunt form shows (as sent, when the server refused it).
public struct HuntSettingsView: Sendable {
    public var description: String
    public var labels: String
    public var excludeLabels: String
    public var os: String
    public var expiryHours: String
    public var clientLimit: String
    public init(description: String = "", labels: String = "", excludeLabels: String = "", os: String = "", expiryHours: String = "168", clientLimit: String = "") {
        self.description = description
        self.labels = labels
        self.excludeLabels = excludeLabels
        self.os = os
        self.expiryHours = expiryHours
        self.clientLimit = clientLimit
    }
}

/// The collect page — of one client, or of a new hunt over the fleet: an artifact picker (search
/// by name and description) and, once one is chosen, its parameters as a typed form (and, for a
/// hunt, its conditions and limits). Problems the server found in a sent form are shown beside
/// their fields and above the form, with the values kept.
public struct CollectPageView: Sendable {
    /// Whom the collection is for: one client, or every client a new hunt matches.
    public enum Target: Sendable {
        case client(id: String, hostname: String)
        case hunt(HuntSettingsView)
    }

    public var heading: String
    public var clientLink: String?
    public var action: String
    public var query: String
    public var artifacts: [ArtifactChoiceView]
    public var moreArtifacts: Int
    public var hasMore: Bool
    public var artifact: String?
    public var artifactDescription: String
    public var fields: [ParameterFieldView]
    public var problems: [String]
    public var hasProblems: Bool
    public var timeout: String
    public var hunt: HuntSettingsView?
    public var submitLabel: String

    public init(
        target: Target, query: String, artifacts: [(name: String, description: String)], artifact: String?,
        artifactDescription: String, fields: [ParameterFieldView], problems: [String], timeout: String, limit: Int = 50
    ) {
        switch target {
        case .client(let id, let hostname):
            let base = "/clients/" + ConsoleText.pathSegment(id)
            heading = "Collect from " + (hostname.isEmpty ? id : hostname)
            clientLink = base
            action = base + "/collect"
            submitLabel = "Collect"
        case .hunt(let settings):
            heading = "New hunt"
            action = "/hunts/new"
            hunt = settings
            submitLabel = "Start the hunt"
        }
        self.query = query
        let words = query.lowercased().split(separator: " ").map(String.init)
        // With an artifact chosen and no search, the form comes first: no list above it.
        let matching = artifact != nil && words.isEmpty ? [] : artifacts.filter { candidate in
            let text = (candidate.name + " " + candidate.description).lowercased()
            return words.allSatisfy { text.contains($0) }
        }
        let action = self.action
        self.artifacts = matching.prefix(limit).map {
            ArtifactChoiceView(
                name: $0.name, description: String($0.description.split(separator: "\n").first ?? ""),
                link: ConsoleText.link(action, [("artifact", $0.name)]), selected: $0.name == artifact)
        }
        moreArtifacts = max(0, matching.count - limit)
        hasMore = moreArtifacts > 0
        self.artifact = artifact
        self.artifactDescription = artifactDescription
        self.fields = fields
        self.problems = problems
        hasProblems = !problems.isEmpty
        self.timeout = timeout
    }
}
