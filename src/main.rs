//! Entry point: parse the command line, run it, render any error and exit with
//! 2 for recipe (user) errors, 130 for an interruption, 1 for everything else.

use clap::Parser;
use imgbuild::cli::{Cli, run};
use imgbuild::fetch::refused::Refused;
use imgbuild::recipe::RecipeError;

fn main() {
    let cli = Cli::parse();
    if let Err(err) = run(cli) {
        // The boot test stops QEMU itself on Ctrl-C and says so: an interruption, 130.
        if let Some(i) = err.downcast_ref::<imgbuild::verify::boot::Interrupted>() {
            eprintln!("imgbuild: {i}");
            std::process::exit(130);
        }
        // Ctrl-C reaches a child in the terminal's process group as soon as imgbuild, and
        // its failure may come back before the handler thread has run: give it a moment.
        std::thread::sleep(std::time::Duration::from_millis(100));
        if imgbuild::interrupt::interrupted() {
            // Its error is a consequence of Ctrl-C: the handler exits with 130.
            imgbuild::interrupt::wait_for_handler();
        }
        // Foreign text in a message (a file, a server's answer) is cut and escaped.
        use imgbuild::report::bounded;
        for (i, l) in bounded::lines(&err.to_string()).iter().enumerate() {
            eprintln!("{}{l}", if i == 0 { "error: " } else { "" });
        }
        for cause in err.chain().skip(1) {
            for (i, l) in bounded::lines(&cause.to_string()).iter().enumerate() {
                eprintln!("{}{l}", if i == 0 { "  caused by: " } else { "    " });
            }
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
        let refused = err.chain().find_map(|c| c.downcast_ref::<Refused>());
        if let Some(r) = refused {
            eprintln!("hint: {}", r.hint);
        }
        let user_error = refused.is_some() || err.chain().any(|c| c.downcast_ref::<RecipeError>().is_some());
        std::process::exit(if user_error { 2 } else { 1 });
    }
}
