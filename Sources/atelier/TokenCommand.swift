import ArgumentParser
import Foundation
import AtelierFarm

/// `atelier token new --name NAME --role ROLE`: makes an access token. The secret goes to stdout
/// (once: the coordinator keeps only its hash), the line for the coordinator's `--tokens` file to
/// stderr, so `atelier token new … > alice.token 2>> tokens` files both away.
struct TokenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Make access tokens for a coordinator started with --tokens.",
        subcommands: [NewToken.self])

    struct NewToken: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "new",
            abstract: "Print a new secret token (stdout) and its tokens-file line (stderr).",
            discussion: """
                Roles: submit (clients: submit, read jobs and workers, cancel their own jobs), work \
                (workers), admin (everything: cancel any job, drain workers). The secret is printed \
                once; the coordinator stores only its SHA-256.

                Example:
                  atelier token new --name alice --role submit > alice.token 2>> /etc/atelier/tokens
                  atelier submit --token-file alice.token "a red fox"
                """)
        @Option(help: "Name (letters, digits, '.', '_', '-'; at most 64): the job owner and the log name.") var name: String
        @Option(help: "submit | work | admin") var role: String

        func run() throws {
            guard AccessTokens.isValidName(name) else {
                throw ValidationError("--name must be 1…\(AccessTokens.maxNameLength) letters, digits, '.', '_' or '-'")
            }
            guard let role = AccessRole(rawValue: role) else {
                throw ValidationError("--role must be submit, work or admin")
            }
            let secret = AccessTokens.newSecret()
            print(secret)
            FileHandle.standardError.write(Data("""
                # add this line to the coordinator's --tokens file (the secret above is shown only once):
                \(AccessTokens.line(name: name, role: role, secret: secret))

                """.utf8))
        }
    }
}
