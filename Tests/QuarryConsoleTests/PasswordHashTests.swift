import Testing

@testable import QuarryConsole

@Suite struct PasswordHashTests {
    @Test func aHashVerifiesOnlyItsPassword() throws {
        let hash = try PasswordHash.make("correct horse battery")
        #expect(hash.hasPrefix("scrypt$16384$8$1$"))
        #expect(!hash.contains("correct"))
        #expect(PasswordHash.verify("correct horse battery", against: hash))
        #expect(!PasswordHash.verify("correct horse batterY", against: hash))
        // Salted: the same password hashes differently each time.
        #expect(try PasswordHash.make("correct horse battery") != hash)
    }

    @Test func malformedOrAbusiveStoredValuesNeverMatch() {
        for stored in ["", "scrypt", "scrypt$16384$8$1$AAAA", "scrypt$3$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            "scrypt$1073741824$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "pbkdf2$1$2$3$4$5"] {
            #expect(!PasswordHash.verify("anything at all", against: stored), "\(stored)")
        }
    }

    @Test func policyRefusesShortAndHugePasswords() {
        #expect(throws: PasswordHash.PolicyError.self) { try PasswordHash.make("short") }
        #expect(throws: PasswordHash.PolicyError.self) { try PasswordHash.make(String(repeating: "x", count: 2000)) }
    }
}
