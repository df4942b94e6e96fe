import Testing
import VQL

/// `url()` gives what Velociraptor's gives: Go's url.URL, whose `Host` keeps the port and whose
/// `String` writes the URL back with Go's escaping.
@Suite struct URLFunctionTests {
    private func one(_ expression: String) throws -> String {
        let (rows, _) = try detect("SELECT \(expression) AS V FROM scope()")
        guard case .dict(let row)? = rows.first?.materialized() else { return "no row" }
        return JSONWriter.string(row["V"] ?? .null)
    }

    @Test func parsesIntoGoFieldsWithThePortInHost() throws {
        #expect(try one("url(parse='https://u:p@Example.org:8443/a%20b/c?x=1&y=#top%21')") == #"{"Scheme":"https","Opaque":"","User":{},"Host":"Example.org:8443","Path":"/a b/c","RawPath":"","OmitHost":false,"ForceQuery":false,"RawQuery":"x=1&y=","Fragment":"top!","RawFragment":"top%21"}"#)
        // The Quarantine artifact's own split of Host gives the frontend's port.
        #expect(try one("split(string=url(parse='http://10.0.0.2:8000/').Host, sep=':')[1]") == #""8000""#)
        #expect(try one("url(parse='HTTP://h').Scheme") == #""http""#)
        #expect(try one("url(parse='mailto:someone@example.org').Opaque") == #""someone@example.org""#)
        #expect(try one("url(parse='file:///tmp/x').Host") == #""""#)
        #expect(try one("url(parse='http://h/x?').ForceQuery") == "true")
        #expect(try one("[url(parse='http://[::1]:80/').Hostname, url(parse='http://[::1]:80/').Port]") == #"["::1","80"]"#)
    }

    @Test func refusesWhatGoRefuses() throws {
        for bad in ["':nothing'", "'http://h/%zz'", "'http://h/\u{7}'"] {
            #expect(try one("url(parse=\(bad))") == "null", "\(bad)")
        }
        #expect(try one("url(parse='rel:ative').Opaque") == #""ative""#)
        #expect(try one("url(parse='./a:b')") != "null")
    }

    @Test func buildsAndWritesBackWithGoEscaping() throws {
        #expect(try one("url(scheme='file', path='/tmp/a b.zip', fragment='dir/m #1.txt').String") == #""file:///tmp/a%20b.zip#dir/m%20%231.txt""#)
        #expect(try one("url(scheme='https', host='h:1', path='x', query=dict(b='2 3', a='&')).String") == #""https://h:1/x?a=%26&b=2+3""#)
        #expect(try one("url(parse='https://h/a%2Fb?q#f').String") == #""https://h/a%2Fb?q#f""#)
        #expect(try one("url(parse='https://h/a%2Fb').RawPath") == #""/a%2Fb""#)
    }
}
