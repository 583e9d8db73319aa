//! `mimi`: sets up the runtime, then hands over to the library.

fn main() -> std::process::ExitCode {
    mimi_cli::main_with_args(std::env::args_os())
}
