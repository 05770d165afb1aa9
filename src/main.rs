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
        let user_error = err.chain().any(|c| c.downcast_ref::<RecipeError>().is_some());
        std::process::exit(if user_error { 2 } else { 1 });
    }
}
