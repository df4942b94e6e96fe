import FuzzDriver
import FuzzQuery

// The certificate decoders on arbitrary bytes: parse_x509 (PEM or DER, one or many) and
// parse_pkcs7 (signed data, as in Authenticode).
let harness = QueryHarness("SELECT parse_x509(data=Data) AS X509, parse_pkcs7(data=Data) AS PKCS7 FROM scope()")

runFuzzer { bytes in harness.run(bytes) }
