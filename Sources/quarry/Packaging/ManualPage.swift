import ArgumentParser
import Artifacts
import Foundation
import QuarryCollector

/// quarry(1), generated from the command declarations: every command's abstract, discussion and
/// help screen, so the manual can never disagree with `--help`.
enum ManualPage {
    /// The page in roff.
    static func render(date: Date = Date()) -> String {
        var page = [
            ".TH QUARRY 1 \"\(dateText(date))\" \"quarry \(QuarryVersion.current)\" \"Quarry Manual\"",
            ".SH NAME", "quarry \\- " + escape(Quarry.configuration.abstract),
            ".SH SYNOPSIS", ".B quarry", ".I command", "[options]",
            ".SH DESCRIPTION",
            escape("Quarry asks live Linux hosts questions in VQL, collects artifacts into containers, builds offline collectors, and runs a fleet of agents (hunts, event monitoring, detection and response). Each command below lists its options as `quarry COMMAND --help` does."),
            ".SH COMMANDS",
        ]
        for (path, command) in commands(Quarry.self, path: []) where !path.isEmpty {
            page.append(".SS \"quarry \(path.joined(separator: " "))\"")
            let configuration = command.configuration
            if !configuration.abstract.isEmpty { page.append(escape(configuration.abstract)) }
            if !configuration.discussion.isEmpty { page += [".PP", escape(configuration.discussion)] }
            page += [".PP", ".nf", escape(Quarry.helpMessage(for: command, columns: 100)), ".fi"]
        }
        page += [".SH FILES", "/etc/quarry/server.yaml, /etc/quarry/client.yaml \\- fleet configurations; /var/lib/quarry, /var/lib/quarry-client \\- state."]
        page += [".SH SEE ALSO", "systemctl(1): units quarry-server.service and quarry-client.service."]
        return page.joined(separator: "\n") + "\n"
    }

    /// Every command below `root`, depth first, with its path of names.
    static func commands(_ root: ParsableCommand.Type, path: [String], depth: Int = 0) -> [([String], ParsableCommand.Type)] {
        guard depth < 8 else { return [] }
        var found = [(path, root)]
        for sub in root.configuration.subcommands {
            let name = sub.configuration.commandName ?? String(describing: sub).lowercased()
            found += commands(sub, path: path + [name], depth: depth + 1)
        }
        return found
    }

    /// Text safe in roff: backslashes doubled, lines starting with . or ' protected, characters
    /// beyond ASCII as groff's \[uXXXX] escapes (the page is read without a preprocessor).
    static func escape(_ text: String) -> String {
        var ascii = ""
        for scalar in text.replacingOccurrences(of: "\\", with: "\\\\").unicodeScalars {
            if scalar.isASCII { ascii.unicodeScalars.append(scalar) } else { ascii += String(format: "\\[u%04X]", scalar.value) }
        }
        return ascii.split(separator: "\n", omittingEmptySubsequences: false).map { line in
            line.hasPrefix(".") || line.hasPrefix("'") ? "\\&" + line : String(line)
        }.joined(separator: "\n")
    }

    static func dateText(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd"
        return formatter.string(from: date)
    }
}
