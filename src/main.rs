//! Entry point: parse the command line, run it, render any error as `error:` /
//! `caused by:` / `hint:` lines and exit with the code its kind decides (2 the user's
//! mistake, 1 a tool or the environment, 130 an interruption; see `imgbuild::fault`).

use clap::Parser;
use imgbuild::cli::explain::explain;
use imgbuild::cli::{Cli, run};
use imgbuild::fault::Kind;
use imgbuild::report::bounded;

fn main() {
    let cli = Cli::parse();
    let Err(err) = run(cli) else { return };
    let explained = explain(&err);
    if explained.kind == Kind::Interrupted {
        // The boot test stops QEMU itself on Ctrl-C and says so.
        eprintln!("imgbuild: {err}");
        std::process::exit(Kind::Interrupted.exit_code());
    }
    // Ctrl-C reaches a child in the terminal's process group as soon as imgbuild, and
    // its failure may come back before the handler thread has run: give it a moment.
    std::thread::sleep(std::time::Duration::from_millis(100));
    if imgbuild::interrupt::interrupted() {
        // Its error is a consequence of Ctrl-C: the handler exits with 130.
        imgbuild::interrupt::wait_for_handler();
    }
    // Foreign text in a message (a file, a server's answer) is cut and escaped.
    for (i, l) in bounded::lines(&err.to_string()).iter().enumerate() {
        eprintln!("{}{l}", if i == 0 { "error: " } else { "" });
    }
    for cause in err.chain().skip(1) {
        for (i, l) in bounded::lines(&cause.to_string()).iter().enumerate() {
            eprintln!("{}{l}", if i == 0 { "  caused by: " } else { "    " });
        }
    }
    for hint in &explained.hints {
        for (i, l) in bounded::lines(hint).iter().enumerate() {
            eprintln!("{}{l}", if i == 0 { "hint: " } else { "  " });
        }
    }
    std::process::exit(explained.kind.exit_code());
}
