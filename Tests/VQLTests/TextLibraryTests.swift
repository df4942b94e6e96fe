import Foundation
import Testing
@testable import VQL

/// substr, regex_transform, commandline_split, rot13, utf16, base85decode, crypto_rc4, semver,
/// similarity, uuid, rand, parse_float, reformat.
@Suite struct TextLibraryTests {
    @Test func substrings() throws {
        let rows = try TestSupport.rows("""
            SELECT substr(str='Hello World', start=6) AS A, substr(str='Hello', start=1, end=3) AS B,
                   substr(str='Hello', start=10) AS C, substr(str='héllo', start=1, end=2) AS D,
                   substr(str='Hello', end=9223372036854775807) AS E
            FROM scope()
            """)
        #expect(rows == [#"{"A":"World","B":"el","C":"","D":"é","E":"Hello"}"#])
    }

    @Test func regexTransformAppliesInOrder() throws {
        let rows = try TestSupport.rows("""
            SELECT regex_transform(source='Hello world', map=dict(`^Hello`='Goodbye', `world`='Space')) AS A,
                   regex_transform(source='2024-01-02', map=dict(`(\\d+)-(\\d+)-(\\d+)`='$3/$2/$1')) AS B
            FROM scope()
            """)
        #expect(rows == [#"{"A":"Goodbye Space","B":"02/01/2024"}"#])
        let (bad, log) = try TestSupport.run("SELECT regex_transform(source='x', map=dict(`(`='y')) AS A FROM scope()")
        #expect(bad.last == [#"{"A":"x"}"#])
        #expect(log.contains { $0.hasPrefix("ERROR") })
    }

    @Test func commandLines() throws {
        let rows = try TestSupport.rows(#"""
            SELECT commandline_split(command='''"C:\Program Files\Velociraptor\Velociraptor.exe" service run''') AS W,
                   commandline_split(command='''/usr/bin/ls -l 'file with space.txt' a\ b "q\"x"''', bash_style=TRUE) AS B,
                   commandline_split(command='''a\\"b c" d''') AS W2
            FROM scope()
            """#)
        #expect(rows == [#"{"W":["C:\\Program Files\\Velociraptor\\Velociraptor.exe","service","run"],"B":["/usr/bin/ls","-l","file with space.txt","a b","q\"x"],"W2":["a\\b c","d"]}"#])
    }

    @Test func codecs() throws {
        let rows = try TestSupport.rows(#"""
            SELECT rot13(string='Hello, World!') AS R, utf16(string='A\x00B\x00C\x00') AS U, utf16_encode(string='AB') AS E,
                   base85decode(string='87cURD]i,"Ebo80') AS B, base85decode(string='<~z~>') = '\x00\x00\x00\x00' AS Z,
                   crypto_rc4(string=crypto_rc4(string='secret', key='k'), key='k') AS C,
                   encode(string=crypto_rc4(string='Plaintext', key='Key'), type='hex') AS CV,
                   parse_float(string='3.25') AS F, parse_float(string='x') AS FX
            FROM scope()
            """#)
        #expect(rows == [#"{"R":"Uryyb, Jbeyq!","U":"ABC","E":"A\u0000B\u0000","B":"Hello World!","Z":true,"C":"secret","CV":"bbf316e8d940af0ad3","F":3.25,"FX":null}"#])
        let (bad, log) = try TestSupport.run("SELECT base85decode(string='~~~') AS B, crypto_rc4(string='x', key='') AS C FROM scope()")
        #expect(bad.last == [#"{"B":null,"C":null}"#])
        #expect(log.filter { $0.hasPrefix("WARN") }.count == 2)
    }

    @Test func semanticVersions() throws {
        let rows = try TestSupport.rows("""
            SELECT semver(version='1.10.0') > '1.9.2' AS A, semver(version='v2.0.0-rc.1') < semver(version='2.0.0') AS B,
                   semver(version='1.2.3-beta+build').Prerelease AS P, semver(version='1.2.3') = '1.2.3' AS E,
                   semver(version='1.2.3-alpha.2') < '1.2.3-alpha.10' AS N, semver(version='nonsense') AS X
            FROM scope()
            """)
        #expect(rows == [#"{"A":true,"B":true,"P":"beta","E":true,"N":true,"X":null}"#])
    }

    @Test func similarityUuidRand() throws {
        let rows = try TestSupport.rows("""
            SELECT similarity(set1=dict(A=1, B=2), set2=dict(A=1, B=3)) AS S, similarity(set1=dict(A=1), set2=dict(A=1)) AS Same,
                   len(list=uuid()) AS L, uuid() != uuid() AS Fresh, rand(range=1) AS Zero,
                   rand(range=9223372036854775807) >= 0 AS Big
            FROM scope()
            """)
        #expect(rows == [#"{"S":0.3333333333333333,"Same":1,"L":36,"Fresh":true,"Zero":0,"Big":true}"#])
        let (bad, log) = try TestSupport.run("SELECT rand(range=-5) AS R FROM scope()")
        #expect(bad.last == [#"{"R":0}"#])
        #expect(log.contains { $0.contains("rand()") })
    }

    @Test func reformatLaysOutVQL() throws {
        let rows = try TestSupport.rows("SELECT reformat(artifact='select a,b from scope() where a LET X = 1') AS V FROM scope()")
        #expect(rows == [#"{"V":"SELECT a,\n       b\nFROM scope()\nWHERE a\n\nLET X = 1"}"#])
        let (bad, log) = try TestSupport.run("SELECT reformat(artifact='select from') AS V FROM scope()")
        #expect(bad.last == [#"{"V":"select from"}"#])
        #expect(log.contains { $0.hasPrefix("ERROR") && $0.contains("reformat") })
    }
}
