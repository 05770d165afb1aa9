//! `lessons/index.html`: the mirrored lessons, grouped like the Carpentries group them,
//! each title linking to the lesson's front page.

use super::urlmap;
use crate::recipe::plan_content::SitePlan;
use anyhow::Result;
use fs_err as fs;
use std::path::Path;

/// The groups in the order the page shows them, with their headings; other groups follow
/// in name order under their own name.
const GROUPS: &[(&str, &str)] = &[
    ("data-carpentry", "Data Carpentry"),
    ("library-carpentry", "Library Carpentry"),
    ("software-carpentry", "Software Carpentry"),
    ("hpc-carpentry", "HPC Carpentry"),
];

/// Writes `out/lessons/index.html` listing `sites`.
pub fn write_index(sites: &[&SitePlan], out: &Path) -> Result<()> {
    let page = super::safe_join(out, "lessons/index.html")?;
    if let Some(dir) = page.parent() {
        fs::create_dir_all(dir)?;
    }
    fs::write(&page, render(sites))?;
    Ok(())
}

fn render(sites: &[&SitePlan]) -> String {
    let mut groups: Vec<(String, String)> = GROUPS.iter().map(|(g, h)| (g.to_string(), h.to_string())).collect();
    let mut others: Vec<&str> = sites
        .iter()
        .map(|s| s.group.as_str())
        .filter(|g| !GROUPS.iter().any(|(k, _)| k == g))
        .collect();
    others.sort();
    others.dedup();
    groups.extend(others.into_iter().map(|g| (g.to_string(), g.to_string())));
    let mut html = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>Lessons</title>\n\
         <style>body{font-family:sans-serif;max-width:50em;margin:2em auto;padding:0 1em;line-height:1.5}</style>\n\
         </head>\n<body>\n<h1>Lessons</h1>\n",
    );
    for (group, heading) in &groups {
        let members: Vec<&&SitePlan> = sites.iter().filter(|s| &s.group == group).collect();
        if members.is_empty() {
            continue;
        }
        html.push_str(&format!("<h2>{}</h2>\n<ul>\n", escape(heading)));
        for s in members {
            let link = urlmap::relative("lessons/index.html", &format!("{}/index.html", s.path));
            html.push_str(&format!(
                "<li><a href=\"{}\">{}</a></li>\n",
                escape(&link),
                escape(&s.title)
            ));
        }
        html.push_str("</ul>\n");
    }
    if sites.is_empty() {
        html.push_str("<p>No lessons are mirrored.</p>\n");
    }
    html.push_str("</body>\n</html>\n");
    html
}

/// Escapes text for HTML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
