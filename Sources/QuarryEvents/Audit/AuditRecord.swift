import Foundation

/// One Linux audit record: `type=SYSCALL msg=audit(1700000000.123:456): key=value …` from an
/// auditd log, or the same body with its type number from the kernel's netlink socket.
struct AuditRecord: Sendable {
    var type: String
    var seconds: Double
    var serial: UInt64
    /// Fields in order; values unquoted, hex values (proctitle, execve arguments) decoded.
    var fields: [(String, String)]

    func field(_ name: String) -> String? { fields.first { $0.0 == name }?.1 }

    static let typeNames: [Int: String] = [
        1006: "LOGIN", 1100: "USER_AUTH", 1101: "USER_ACCT", 1102: "USER_MGMT", 1103: "CRED_ACQ", 1104: "CRED_DISP",
        1105: "USER_START", 1106: "USER_END", 1107: "USER_AVC", 1108: "USER_CHAUTHTOK", 1109: "USER_ERR",
        1110: "CRED_REFR", 1111: "USYS_CONFIG", 1112: "USER_LOGIN", 1113: "USER_LOGOUT", 1114: "ADD_USER",
        1115: "DEL_USER", 1116: "ADD_GROUP", 1117: "DEL_GROUP", 1123: "USER_CMD", 1124: "USER_TTY", 1130: "SERVICE_START",
        1131: "SERVICE_STOP", 1300: "SYSCALL", 1302: "PATH", 1303: "IPC", 1304: "SOCKETCALL", 1305: "CONFIG_CHANGE",
        1306: "SOCKADDR", 1307: "CWD", 1309: "EXECVE", 1311: "IPC_SET_PERM", 1312: "MQ_OPEN", 1313: "MQ_SENDRECV",
        1314: "MQ_NOTIFY", 1315: "MQ_GETSETATTR", 1316: "KERNEL_OTHER", 1317: "FD_PAIR", 1318: "OBJ_PID",
        1319: "TTY", 1320: "EOE", 1321: "BPRM_FCAPS", 1322: "CAPSET", 1323: "MMAP", 1324: "NETFILTER_PKT",
        1325: "NETFILTER_CFG", 1326: "SECCOMP", 1327: "PROCTITLE", 1328: "FEATURE_CHANGE", 1329: "REPLACE",
        1330: "KERN_MODULE", 1331: "FANOTIFY", 1332: "TIME_INJOFFSET", 1333: "TIME_ADJNTPVAL", 1334: "BPF",
        1335: "EVENT_LISTENER", 1336: "URINGOP", 1337: "OPENAT2", 1338: "DM_CTRL", 1339: "DM_EVENT",
        1400: "AVC", 1401: "SELINUX_ERR", 1700: "ANOM_PROMISCUOUS", 1701: "ANOM_ABEND", 1702: "ANOM_LINK",
        2000: "KERNEL",
    ]

    /// A line of an auditd log (nil when it is not one).
    static func parse(line: String) -> AuditRecord? {
        guard line.hasPrefix("type="), let space = line.firstIndex(of: " ") else { return nil }
        let type = String(line[line.index(line.startIndex, offsetBy: 5)..<space])
        let rest = line[line.index(after: space)...]
        guard rest.hasPrefix("msg=") else { return nil }
        return parse(body: rest.dropFirst(4), type: type)
    }

    /// A netlink message: its type number and its text.
    static func parse(type: Int, body: String) -> AuditRecord? {
        parse(body: Substring(body), type: typeNames[type] ?? "UNKNOWN[\(type)]")
    }

    /// "audit(SECONDS:SERIAL): fields…"
    static func parse(body: Substring, type: String) -> AuditRecord? {
        guard body.hasPrefix("audit("), let close = body.firstIndex(of: ")") else { return nil }
        let stamp = body[body.index(body.startIndex, offsetBy: 6)..<close].split(separator: ":")
        guard stamp.count == 2, let seconds = Double(stamp[0]), let serial = UInt64(stamp[1]) else { return nil }
        var rest = body[body.index(after: close)...]
        if rest.hasPrefix(":") { rest = rest.dropFirst() }
        var fields = splitFields(rest)
        // User-space messages carry their own fields inside msg='…'.
        if let index = fields.firstIndex(where: { $0.key == "msg" }) {
            let inner = fields.remove(at: index).value
            fields += splitFields(Substring(inner))
        }
        let decoded = fields.map { field -> (String, String) in
            // Unquoted values of these fields are hex (auditd's encoding of awkward bytes).
            guard !field.quoted, hexEncoded(name: field.key, type: type), let text = decodeHex(field.value) else {
                return (field.key, field.value)
            }
            return (field.key, text)
        }
        return AuditRecord(type: type, seconds: seconds, serial: serial, fields: decoded)
    }

    /// key=value pairs; a value is "quoted", 'quoted' or bare up to the next space.
    static func splitFields(_ text: Substring) -> [(key: String, value: String, quoted: Bool)] {
        var fields: [(key: String, value: String, quoted: Bool)] = []
        var index = text.startIndex
        while index < text.endIndex {
            while index < text.endIndex && text[index] == " " { index = text.index(after: index) }
            guard let equals = text[index...].firstIndex(of: "=") else { break }
            let key = String(text[index..<equals]).trimmingCharacters(in: .whitespaces)
            var cursor = text.index(after: equals)
            var value = ""
            let quoted = cursor < text.endIndex && (text[cursor] == "\"" || text[cursor] == "'")
            if quoted {
                let quote = text[cursor]
                cursor = text.index(after: cursor)
                let end = text[cursor...].firstIndex(of: quote) ?? text.endIndex
                value = String(text[cursor..<end])
                cursor = end < text.endIndex ? text.index(after: end) : end
            } else {
                let end = text[cursor...].firstIndex(of: " ") ?? text.endIndex
                value = String(text[cursor..<end])
                cursor = end
            }
            if !key.isEmpty && !key.contains(" ") { fields.append((key, value, quoted)) }
            index = cursor
        }
        return fields
    }

    /// Fields auditd writes in hex when they hold spaces or non-printing bytes (unquoted values).
    static func hexEncoded(name: String, type: String) -> Bool {
        if name == "proctitle" { return true }
        if type == "EXECVE", name.hasPrefix("a"), Int(name.dropFirst()) != nil { return true }
        return ["name", "cwd", "exe", "comm", "key", "path"].contains(name)
    }

    /// Hex text to a string (NULs become spaces, as in a command line); nil when not hex.
    static func decodeHex(_ value: String) -> String? {
        let digits = Array(value.utf8)
        guard digits.count >= 2, digits.count % 2 == 0,
              digits.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x46) }) else { return nil }
        var bytes: [UInt8] = []
        var i = 0
        while i < digits.count {
            guard let byte = UInt8(String(decoding: digits[i..<(i + 2)], as: UTF8.self), radix: 16) else { return nil }
            bytes.append(byte == 0 ? 0x20 : byte)
            i += 2
        }
        while bytes.last == 0x20 { bytes.removeLast() }
        return String(decoding: bytes, as: UTF8.self)
    }
}
