//! The `shiren` binary: everything lives in the library; see `shiren --help`.
fn main() -> std::process::ExitCode {
    shiren::cli::run()
}
