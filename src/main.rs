//! The `codearts-bot` binary: everything lives in the library; see `codearts_bot::cli`.

fn main() -> std::process::ExitCode {
    codearts_bot::cli::main()
}
