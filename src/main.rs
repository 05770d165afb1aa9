//! Entry point: parse the command line, run it, render any error and exit with
//! 2 for recipe (user) errors, 1 for everything else.

use clap::Parser;
use imgbuild::cli::{Cli, run};
use imgbuild::recipe::RecipeError;

fn main() {
    let cli = Cli::parse();
    if let Err(err) = run(cli) {
        eprintln!("error: {err}");
        for cause in err.chain().skip(1) {
            eprintln!("  caused by: {cause}");
        }
        let disk_full = err.chain().any(|c| {
            c.downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::StorageFull || e.raw_os_error() == Some(28))
                || c.to_string().contains("No space left on device")
        });
        if disk_full {
            eprintln!(
                "hint: a disk is full; free space there, or point --out or --cache-dir at a larger disk, then run again (finished stages are reused from the cache)"
            );
        }
        let user_error = err.chain().any(|c| c.downcast_ref::<RecipeError>().is_some());
        std::process::exit(if user_error { 2 } else { 1 });
    }
}
