//! `mimid`: sets up logging and the runtime, then hands over to the library.

/// Request handling allocates many small buffers; mimalloc serves them with less contention
/// and fewer instructions than the system allocator (see BENCHMARKS.md, fan-out).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    mimi_server::main_with_args(std::env::args_os())
}
