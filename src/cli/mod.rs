//! The `sluice` binary's subcommands.
pub fn main() -> std::process::ExitCode {
    std::process::ExitCode::SUCCESS
}
