//! `mimid`: sets up logging and the runtime, then hands over to the library.

fn main() -> std::process::ExitCode {
    mimi_server::main_with_args(std::env::args_os())
}
