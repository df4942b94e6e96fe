import Foundation
import PrivateFiles

/// A small line editor for the REPL (raw terminal mode, no GPL code): cursor movement, history
/// with up/down and Ctrl-R search, Tab completion, Ctrl-C/Ctrl-D handling.
final class LineEditor {
    /// What reading a line produced.
    enum Input {
        case line(String)
        /// Ctrl-C at the prompt: the current input was dropped.
        case interrupted
        /// Ctrl-D on an empty line, or end of input.
        case endOfFile
    }

    /// Offers completions for the text before the cursor: the replacement for the word being
    /// typed and the candidates.
    typealias Completer = (_ textBeforeCursor: String) -> (wordStart: Int, candidates: [String])

    private(set) var history: [String] = []
    private let historyFile: String?
    private let maxHistory = 2000
    var completer: Completer?

    init(historyFile: String?) {
        self.historyFile = historyFile
        if let historyFile, let text = try? String(contentsOfFile: historyFile, encoding: .utf8) {
            history = text.split(separator: "\n", omittingEmptySubsequences: true).map {
                String($0).replacingOccurrences(of: "\\n", with: "\n")
            }
        }
    }

    /// Adds an entry and saves the history file (mode 0600).
    func remember(_ entry: String) {
        let trimmed = entry.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty, history.last != trimmed else { return }
        history.append(trimmed)
        if history.count > maxHistory { history.removeFirst(history.count - maxHistory) }
        guard let historyFile else { return }
        let text = history.map { $0.replacingOccurrences(of: "\n", with: "\\n") }.joined(separator: "\n") + "\n"
        try? PrivateFile.write(Data(text.utf8), to: historyFile)
    }

    // MARK: - Terminal modes

    private var original = termios()

    private func enableRawMode() {
        tcgetattr(STDIN_FILENO, &original)
        var raw = original
        raw.c_iflag &= ~tcflag_t(BRKINT | ICRNL | INPCK | ISTRIP | IXON)
        raw.c_lflag &= ~tcflag_t(ECHO | ICANON | IEXTEN | ISIG)
        withUnsafeMutableBytes(of: &raw.c_cc) { cc in
            cc[Int(VMIN)] = 1
            cc[Int(VTIME)] = 0
        }
        tcsetattr(STDIN_FILENO, TCSANOW, &raw)
    }

    private func disableRawMode() {
        tcsetattr(STDIN_FILENO, TCSANOW, &original)
    }

    private func write(_ text: String) {
        FileHandle.standardOutput.write(Data(text.utf8))
    }

    private func readByte() -> UInt8? {
        var byte: UInt8 = 0
        while true {
            let n = read(STDIN_FILENO, &byte, 1)
            if n == 1 { return byte }
            if n < 0 && errno == EINTR { continue }
            return nil
        }
    }

    private var terminalWidth: Int { RowWriter.detectTerminalWidth() }

    // MARK: - Reading a line

    func readLine(prompt: String) -> Input {
        enableRawMode()
        defer { disableRawMode() }
        var buffer: [Character] = []
        var cursor = 0
        var historyIndex = history.count
        var pending = ""
        write(prompt)

        func redraw() {
            let text = String(buffer)
            let width = max(20, terminalWidth - prompt.count - 1)
            // Keep the cursor visible on long lines by scrolling horizontally.
            var start = 0
            if cursor > width { start = cursor - width }
            let visible = String(Array(text)[start..<min(buffer.count, start + width)])
            write("\r" + prompt + visible + "\u{1B}[K")
            let back = min(buffer.count, start + width) - cursor
            if back > 0 { write("\u{1B}[\(back)D") }
        }

        while true {
            guard let byte = readByte() else { return .endOfFile }
            switch byte {
            case 13, 10:
                write("\r\n")
                return .line(String(buffer))
            case 3:
                write("^C\r\n")
                return .interrupted
            case 4:
                if buffer.isEmpty {
                    write("\r\n")
                    return .endOfFile
                }
                if cursor < buffer.count {
                    buffer.remove(at: cursor)
                    redraw()
                }
            case 127, 8:
                if cursor > 0 {
                    buffer.remove(at: cursor - 1)
                    cursor -= 1
                    redraw()
                }
            case 1: cursor = 0; redraw()
            case 5: cursor = buffer.count; redraw()
            case 2: if cursor > 0 { cursor -= 1; redraw() }
            case 6: if cursor < buffer.count { cursor += 1; redraw() }
            case 11: buffer.removeSubrange(cursor...); redraw()
            case 21: buffer.removeSubrange(..<cursor); cursor = 0; redraw()
            case 23:
                var start = cursor
                while start > 0 && buffer[start - 1] == " " { start -= 1 }
                while start > 0 && buffer[start - 1] != " " { start -= 1 }
                buffer.removeSubrange(start..<cursor)
                cursor = start
                redraw()
            case 12: write("\u{1B}[H\u{1B}[2J"); redraw()
            case 9:
                complete(&buffer, &cursor, prompt: prompt)
                redraw()
            case 18:
                if let found = reverseSearch(prompt: prompt) {
                    buffer = Array(found)
                    cursor = buffer.count
                }
                redraw()
            case 27:
                guard let next = readByte() else { continue }
                if next == UInt8(ascii: "[") || next == UInt8(ascii: "O") {
                    guard let code = readByte() else { continue }
                    switch code {
                    case UInt8(ascii: "A"):
                        if historyIndex == history.count { pending = String(buffer) }
                        if historyIndex > 0 {
                            historyIndex -= 1
                            buffer = Array(history[historyIndex].replacingOccurrences(of: "\n", with: " "))
                            cursor = buffer.count
                            redraw()
                        }
                    case UInt8(ascii: "B"):
                        if historyIndex < history.count {
                            historyIndex += 1
                            buffer = Array(historyIndex == history.count ? pending : history[historyIndex].replacingOccurrences(of: "\n", with: " "))
                            cursor = buffer.count
                            redraw()
                        }
                    case UInt8(ascii: "C"): if cursor < buffer.count { cursor += 1; redraw() }
                    case UInt8(ascii: "D"): if cursor > 0 { cursor -= 1; redraw() }
                    case UInt8(ascii: "H"): cursor = 0; redraw()
                    case UInt8(ascii: "F"): cursor = buffer.count; redraw()
                    case UInt8(ascii: "3"):
                        _ = readByte()
                        if cursor < buffer.count {
                            buffer.remove(at: cursor)
                            redraw()
                        }
                    default:
                        // Swallow the rest of an unknown sequence (digits and ';').
                        break
                    }
                }
            default:
                guard byte >= 32 else { continue }
                var bytes = [byte]
                // Collect the continuation bytes of a UTF-8 character.
                let extra = byte >= 0xF0 ? 3 : byte >= 0xE0 ? 2 : byte >= 0xC0 ? 1 : 0
                for _ in 0..<extra { if let b = readByte() { bytes.append(b) } }
                for ch in String(decoding: bytes, as: UTF8.self) {
                    buffer.insert(ch, at: cursor)
                    cursor += 1
                }
                redraw()
            }
        }
    }

    /// Tab: complete the word before the cursor; with several candidates, extend to their common
    /// prefix and list them.
    private func complete(_ buffer: inout [Character], _ cursor: inout Int, prompt: String) {
        guard let completer else { return }
        let before = String(buffer[..<cursor])
        let (wordStart, candidates) = completer(before)
        guard !candidates.isEmpty else { return }
        let typed = Array(before)[wordStart...]
        var replacement: String
        if candidates.count == 1 {
            replacement = candidates[0]
        } else {
            replacement = candidates.reduce(candidates[0]) { common, next in
                String(zip(common, next).prefix { $0 == $1 }.map(\.0))
            }
            if replacement.count <= typed.count {
                write("\r\n" + candidates.prefix(60).joined(separator: "  ") + (candidates.count > 60 ? "  …" : "") + "\r\n")
            }
        }
        if replacement.count < typed.count { replacement = String(typed) }
        buffer.replaceSubrange(wordStart..<cursor, with: Array(replacement))
        cursor = wordStart + replacement.count
    }

    /// Ctrl-R: incremental reverse search through history. Enter accepts, Ctrl-C/Esc cancels.
    private func reverseSearch(prompt: String) -> String? {
        var query = ""
        var match: String?
        func show() {
            write("\r(reverse-i-search)`\(query)': \(match?.replacingOccurrences(of: "\n", with: " ") ?? "")\u{1B}[K")
        }
        show()
        while let byte = readByte() {
            switch byte {
            case 13, 10: return match
            case 3, 27, 7: return nil
            case 127, 8:
                if !query.isEmpty { query.removeLast() }
            case 18:
                // Next older match.
                if let current = match, let i = history.lastIndex(of: current) {
                    match = history[..<i].last { $0.localizedCaseInsensitiveContains(query) } ?? current
                }
                show()
                continue
            default:
                if byte >= 32 { query.append(Character(Unicode.Scalar(byte))) }
            }
            match = query.isEmpty ? nil : history.last { $0.localizedCaseInsensitiveContains(query) }
            show()
        }
        return match
    }
}
