// OpenSSL's libcrypto (Debian's libssl-dev): bulk AES for the WinZip AES counter mode of sealed
// collections (swift-crypto offers no little-endian counter mode and no ECB).
#include <openssl/evp.h>
