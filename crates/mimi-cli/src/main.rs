//! `mimi`: sets up the runtime, then hands over to the library.

/// The client and the load generator allocate many small buffers per message, as `mimid`
/// does: the same allocator serves them with fewer instructions than the system one.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    mimi_cli::main_with_args(std::env::args_os())
}
