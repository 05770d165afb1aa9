//! The workshop server layer (`recipes/layers/carpentries-server.yaml`) as the Pi recipes
//! use it: its overlay rendered with the recipe's real variables, then checked by the
//! tools that will read it (`dnsmasq --test`, `nft -c`) or, for hostapd, which has no
//! check mode, by its rules; the landing page rendered from a content summary; the
//! variables that switch parts on and off; and the Wi-Fi passphrase step's refusals.

use crate::common::tool;
use imgbuild::build_info::{BuildInfo, Host};
use imgbuild::fetch::lock::LockFile;
use imgbuild::recipe::{Resolved, resolve};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn sets(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// A lock with one installer, so the landing page has a download to list.
fn lock_with_installer() -> LockFile {
    serde_json::from_value(
        serde_json::json!({"version": 1, "sources": {"file/r-windows": {"inputs": "x",
        "files": [{"url": "https://cloud.r-project.org/bin/windows/base/R-4.5.2-win.exe", "size": 94_371_840u64,
                   "sha256": "0".repeat(64), "path": "R/windows/R-4.5.2-win.exe"}]}}}),
    )
    .unwrap()
}

/// The template context a build gives overlays (built 2025-11-22), with `lock`'s content.
fn context(resolved: &Resolved, lock: &LockFile) -> serde_json::Value {
    let mut ctx =
        imgbuild::pipeline::template_context(resolved, Some(&BuildInfo::at(1_763_769_600, Host { threads: 1 })));
    ctx["content"] = imgbuild::fetch::summary::of(resolved.plan.content.as_ref(), lock);
    ctx
}

/// `overlays/NAME` rendered into `dest`, as the build renders it.
fn render_overlay(name: &str, ctx: &serde_json::Value, dest: &Path) {
    imgbuild::rootfs::render::render_dir(&repo(&format!("overlays/{name}")), dest, ctx).unwrap();
}

/// The server overlay rendered for `resolved`, with one installer mirrored.
fn render(resolved: &Resolved, dest: &Path) {
    let mut ctx = context(resolved, &lock_with_installer());
    // pi4 lists no service yet; one as a service layer declares it.
    if resolved.plan.services.is_empty() {
        ctx["services"] =
            serde_json::json!([{"name": "gitea", "title": "Gitea", "path": "/gitea/", "description": "Git hosting"}]);
    }
    render_overlay("carpentries-server", &ctx, dest);
}

fn key_values(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

#[test]
#[ignore = "tier root: `nft -c` needs CAP_NET_ADMIN to check the ruleset"]
fn server_configs_render_and_pass_their_tools_checks_tier_root() {
    let tmp = tempfile::tempdir().unwrap();
    let resolved = resolve(&repo("recipes/pi4.yaml"), &[]).unwrap();
    let root = tmp.path().join("root");
    render(&resolved, &root);

    let dnsmasq = root.join("etc/dnsmasq.d/carpentries.conf");
    let out = crate::common::ok(tool("dnsmasq").arg("--test").arg("-C").arg(&dnsmasq));
    assert!(String::from_utf8_lossy(&out.stderr).contains("syntax check OK"));
    let conf = std::fs::read_to_string(&dnsmasq).unwrap();
    assert!(conf.contains("address=/carpentriesoffline.org/192.168.1.1"), "{conf}");
    assert!(
        conf.contains("dhcp-range=set:learners,192.168.1.100,192.168.1.250,12h"),
        "{conf}"
    );

    crate::common::ok(tool("nft").arg("-c").arg("-f").arg(root.join("etc/nftables.conf")));

    // hostapd has no check mode: the rules it would apply at start-up.
    let ap = key_values(&std::fs::read_to_string(root.join("etc/hostapd/hostapd.conf")).unwrap());
    assert_eq!(ap["interface"], "wlan0");
    assert_eq!(ap["ssid"], "CarpentriesOffline");
    assert_eq!(ap["wpa"], "2", "WPA2 unless the recipe asks for an open network");
    assert_eq!(ap["wpa_key_mgmt"], "WPA-PSK");
    assert_eq!(ap["wpa_psk_file"], "/etc/hostapd/wpa_psk");
    assert!(ap["country_code"].len() == 2 && ap["country_code"].chars().all(|c| c.is_ascii_uppercase()));
    let channel: u32 = ap["channel"].parse().unwrap();
    assert!((1..=13).contains(&channel) && ap["hw_mode"] == "g");

    let network = std::fs::read_to_string(root.join("etc/systemd/network/10-learners.network")).unwrap();
    assert!(network.contains("Name=wlan0") && network.contains("Address=192.168.1.1/24"));
    let hosts = std::fs::read_to_string(root.join("etc/hosts")).unwrap();
    assert!(hosts.contains("192.168.1.1\tcarpentriesoffline.org www.carpentriesoffline.org"));
}

#[test]
fn an_open_network_only_when_asked_and_wifi_parts_only_with_wifi() {
    let tmp = tempfile::tempdir().unwrap();
    let open = resolve(&repo("recipes/pi4.yaml"), &sets(&[("wifi_open", "true")])).unwrap();
    render(&open, tmp.path());
    let ap = key_values(&std::fs::read_to_string(tmp.path().join("etc/hostapd/hostapd.conf")).unwrap());
    assert_eq!(ap["wpa"], "0");
    assert!(!ap.contains_key("wpa_psk_file"));

    let wired = resolve(&repo("recipes/pi4.yaml"), &sets(&[("wifi", "false")])).unwrap();
    let packages = &wired.recipe.rootfs.as_ref().unwrap().packages;
    let names: Vec<&String> = packages.iter().flat_map(|p| p.items.iter()).collect();
    assert!(!names.iter().any(|p| *p == "hostapd"), "{names:?}");
    assert!(names.iter().any(|p| *p == "dnsmasq"), "{names:?}");
    let steps: Vec<&str> = wired.plan.steps.iter().map(|s| s.name.as_str()).collect();
    assert!(
        !steps.contains(&"wifi-passphrase") && steps.contains(&"server-services"),
        "{steps:?}"
    );

    let with_wifi = resolve(&repo("recipes/pi4.yaml"), &[]).unwrap();
    let steps: Vec<&str> = with_wifi.plan.steps.iter().map(|s| s.name.as_str()).collect();
    assert!(steps.contains(&"wifi-passphrase"), "{steps:?}");

    // A condition that is not a boolean names its field.
    let err = resolve(&repo("recipes/pi4.yaml"), &sets(&[("wifi", "maybe")]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("when: `maybe` is not true or false"), "{err}");
}

#[test]
fn the_landing_page_lists_what_was_mirrored_and_needs_no_internet() {
    let tmp = tempfile::tempdir().unwrap();
    let resolved = resolve(&repo("recipes/pi4.yaml"), &[]).unwrap();
    render(&resolved, tmp.path());
    let page = std::fs::read_to_string(tmp.path().join("var/www/html/index.html")).unwrap();
    // Every lesson of the groups the workshop server mirrors (hpc-carpentry is the
    // miniHPC head's).
    for (_, _, names) in imgbuild::recipe::catalogue::LESSONS
        .iter()
        .filter(|(g, _, _)| *g != "hpc-carpentry")
    {
        for n in *names {
            assert!(page.contains(&format!("/{n}/\"")), "lesson {n} not linked");
        }
    }
    for want in [
        "<h3>Software Carpentry</h3>",
        "<h3>Windows</h3>",
        "href=\"/R/windows/R-4.5.2-win.exe\"",
        "90.0 MiB",
        "href=\"/mirrors.html\"",
        "pip install --index-url",
        "install.packages(",
        "built 2025-11-22",
        "name=\"viewport\"",
        "href=\"/gitea/\">Gitea</a>",
        "--trusted-host <span class=\"host\">carpentriesoffline.org</span>",
    ] {
        assert!(page.contains(want), "landing page lacks {want}");
    }
    // Nothing is loaded from elsewhere: no absolute src/href, no @import or url().
    for bad in ["src=\"http", "href=\"http", "@import", "url("] {
        assert!(!page.contains(bad), "landing page loads {bad}…");
    }

    // Without mirrors it still renders, with no empty sections.
    let bare = resolve(
        &repo("recipes/pi4.yaml"),
        &sets(&[
            ("mirrors", "false"),
            ("gitea", "false"),
            ("jupyterhub", "false"),
            ("etherpad", "false"),
        ]),
    )
    .unwrap();
    let dir = tmp.path().join("bare");
    render_overlay("carpentries-server", &context(&bare, &LockFile::default()), &dir);
    let page = std::fs::read_to_string(dir.join("var/www/html/index.html")).unwrap();
    assert!(!page.contains("id=\"lessons\"") && !page.contains("id=\"packages\""));
    assert!(!page.contains("id=\"services\""), "no service enabled, no section");
}

#[test]
fn the_wifi_passphrase_step_refuses_a_bad_length_and_bakes_none_unless_given() {
    let script = repo("recipes/layers/scripts/wifi-passphrase.sh");
    let tmp = tempfile::tempdir().unwrap();
    let psk = tmp.path().join("hostapd/wpa_psk");
    let run = |pass: &str, open: &str| {
        Command::new("sh")
            .arg(&script)
            .env_remove("IMGBUILD_WIFI_PASSPHRASE")
            .env("PSK_FILE", &psk)
            .env("PASSPHRASE", pass)
            .env("OPEN", open)
            .output()
            .unwrap()
    };
    // None given: the image holds none, and each device makes its own at first boot.
    let out = run("", "false");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("each device makes its own at first boot"));
    assert!(!psk.exists());
    let out = run("short", "false");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("has 5 characters; WPA2 needs 8 to 63"));
    assert!(!psk.exists());
    assert!(run("correct horse battery", "false").status.success());
    assert_eq!(
        std::fs::read_to_string(&psk).unwrap(),
        "00:00:00:00:00:00 correct horse battery\n"
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&psk).unwrap().permissions().mode() & 0o777, 0o600);
    // An open network asked for explicitly is fine, and keeps no passphrase.
    assert!(run("", "true").status.success());
    assert!(!psk.exists());
}

#[test]
fn services_switched_by_a_variable_reach_the_landing_page_or_not() {
    let tmp = tempfile::tempdir().unwrap();
    let recipe = crate::common::write(
        tmp.path(),
        "svc.yaml",
        &format!(
            "extends: {}\nvars: {{pad: false}}\nservices:\n  gitea: {{title: Gitea, path: /gitea/, description: Git hosting}}\n  etherpad: {{when: \"{{{{ pad }}}}\", title: Etherpad, path: /pad/}}\n",
            repo("recipes/pi4.yaml").display()
        ),
    );
    let off = resolve(&recipe, &[]).unwrap();
    let names: Vec<&str> = off.plan.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["gitea", "jupyterhub"]);
    let on = resolve(&recipe, &sets(&[("pad", "true")])).unwrap();
    let names: Vec<&str> = on.plan.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["gitea", "jupyterhub", "etherpad"]);
    let root = tmp.path().join("root");
    render(&on, &root);
    let page = std::fs::read_to_string(root.join("var/www/html/index.html")).unwrap();
    assert!(
        page.contains("href=\"/pad/\">Etherpad</a>"),
        "the template sees the recipe's services"
    );

    let bad = crate::common::write(
        tmp.path(),
        "bad.yaml",
        &format!(
            "extends: {}\nservices:\n  x: {{title: X, path: gitea}}\n",
            repo("recipes/pi4.yaml").display()
        ),
    );
    let err = resolve(&bad, &[]).unwrap_err().to_string();
    assert!(
        err.contains("services.x.path") && err.contains("`gitea` is neither a path"),
        "{err}"
    );
}

/// The Gitea overlay rendered for `resolved`.
fn render_gitea(resolved: &Resolved, dest: &Path) {
    render_overlay("gitea", &context(resolved, &LockFile::default()), dest);
}

fn ini_value(text: &str, key: &str) -> String {
    text.lines()
        .find_map(|l| {
            l.split_once('=')
                .filter(|(k, _)| k.trim() == key)
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| panic!("{key} missing"))
}

#[test]
fn gitea_is_configured_for_the_served_name_offline_and_without_secrets_in_the_image() {
    let tmp = tempfile::tempdir().unwrap();
    let resolved = resolve(&repo("recipes/pi4.yaml"), &[]).unwrap();
    render_gitea(&resolved, tmp.path());
    let ini = std::fs::read_to_string(tmp.path().join("etc/gitea/app.ini")).unwrap();
    assert_eq!(ini_value(&ini, "ROOT_URL"), "http://carpentriesoffline.org/gitea/");
    assert_eq!(ini_value(&ini, "OFFLINE_MODE"), "true");
    assert_eq!(ini_value(&ini, "DB_TYPE"), "sqlite3");
    assert_eq!(ini_value(&ini, "HTTP_ADDR"), "127.0.0.1", "only nginx talks to Gitea");
    for secret in ["SECRET_KEY", "INTERNAL_TOKEN", "LFS_JWT_SECRET", "JWT_SECRET"] {
        assert_eq!(ini_value(&ini, secret), "", "{secret} must be made on the device");
    }
    let nginx = std::fs::read_to_string(tmp.path().join("etc/nginx/carpentries.d/gitea.conf")).unwrap();
    assert!(nginx.contains("location /gitea/") && nginx.contains("proxy_pass http://127.0.0.1:3000/;"));
    // Enabled by the overlay's links: the units arrive after the steps that could enable them.
    for unit in ["gitea.service", "gitea-first-boot.service"] {
        let link = tmp.path().join("etc/systemd/system/multi-user.target.wants").join(unit);
        assert_eq!(std::fs::read_link(&link).unwrap(), Path::new("..").join(unit));
    }
    let unit = std::fs::read_to_string(tmp.path().join("etc/systemd/system/gitea-first-boot.service")).unwrap();
    assert!(unit.contains("GITEA_ADMIN=instructor"), "{unit}");

    // The binary: dl.gitea.com's build for the image's architecture, pinned by the lock.
    let bin = resolved
        .plan
        .content
        .as_ref()
        .unwrap()
        .sources
        .iter()
        .find_map(|s| match s {
            imgbuild::recipe::plan_content::SourcePlan::File(f)
                if f.target.as_deref() == Some("usr/local/bin/gitea") =>
            {
                Some(f.clone())
            }
            _ => None,
        });
    let (index, pattern) = bin.expect("a gitea download").latest.unwrap();
    assert_eq!(index, "https://dl.gitea.com/gitea/1.24.6/");
    assert!(pattern.ends_with("-linux-arm64$"), "{pattern}");
    let zero = resolve(&repo("recipes/pi-zero.yaml"), &[]).unwrap();
    let found = format!("{:?}", zero.plan.content.unwrap().sources);
    assert!(found.contains("-linux-arm-5$"), "armel takes Gitea's arm-5 build");

    // Switched off: no binary, user, overlay or landing-page link.
    let off = resolve(&repo("recipes/pi4.yaml"), &sets(&[("gitea", "false")])).unwrap();
    let everything = format!("{:?} {:?} {:?}", off.plan.content, off.plan.steps, off.plan.overlays);
    assert!(!everything.contains("gitea"), "{everything}");
    assert!(off.plan.services.iter().all(|s| s.name != "gitea"));
}

#[test]
fn gitea_first_boot_makes_each_device_its_own_secrets_and_the_admin() {
    let tmp = tempfile::tempdir().unwrap();
    let resolved = resolve(&repo("recipes/pi4.yaml"), &[]).unwrap();
    render_gitea(&resolved, tmp.path());
    let script = tmp.path().join("usr/local/sbin/gitea-first-boot");
    // A stand-in for the gitea binary that records how it was called.
    let calls = tmp.path().join("calls");
    let fake = crate::common::write(
        tmp.path(),
        "gitea",
        &format!("#!/bin/sh\necho \"$@\" >> {}\n", calls.display()),
    );
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let device = |n: u32, password: Option<&str>| {
        let dir = tmp.path().join(format!("device{n}"));
        std::fs::create_dir_all(&dir).unwrap();
        let ini = dir.join("app.ini");
        std::fs::copy(tmp.path().join("etc/gitea/app.ini"), &ini).unwrap();
        let pw = dir.join("admin-password");
        if let Some(p) = password {
            std::fs::write(&pw, format!("{p}\n")).unwrap();
        }
        let out = Command::new("sh")
            .arg(&script)
            .env("APP_INI", &ini)
            .env("ADMIN_PASSWORD_FILE", &pw)
            .env("DONE", dir.join("done"))
            .env("GITEA", &fake)
            .env("GITEA_ADMIN", "instructor")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(dir.join("done").is_file());
        assert!(!pw.exists(), "the admin password must not outlive first boot");
        std::fs::read_to_string(&ini).unwrap()
    };
    let a = device(1, Some("s3cret pass"));
    let b = device(2, None);
    for secret in ["SECRET_KEY", "INTERNAL_TOKEN", "LFS_JWT_SECRET", "JWT_SECRET"] {
        let (va, vb) = (ini_value(&a, secret), ini_value(&b, secret));
        assert!(va.len() >= 43 && vb.len() >= 43, "{secret}: {va} / {vb}");
        assert_ne!(va, vb, "two devices share {secret}");
    }
    // Gitea's JWT secrets are 32 bytes, base64url without padding.
    assert_eq!(ini_value(&a, "JWT_SECRET").len(), 43);
    assert!(!ini_value(&a, "JWT_SECRET").contains(['+', '/', '=']));
    let called = std::fs::read_to_string(&calls).unwrap();
    assert!(called.contains("migrate --config"), "{called}");
    assert!(
        called.contains("admin user create")
            && called.contains("--username instructor")
            && called.contains("--password s3cret pass"),
        "{called}"
    );
    assert_eq!(
        called.matches("admin user create").count(),
        1,
        "no admin without a password"
    );
}

#[test]
fn jupyterhub_config_compiles_and_learners_come_from_the_csv() {
    let tmp = tempfile::tempdir().unwrap();
    let resolved = resolve(&repo("recipes/pi4.yaml"), &[]).unwrap();
    render_overlay("jupyterhub", &context(&resolved, &LockFile::default()), tmp.path());
    let config = tmp.path().join("etc/jupyterhub/jupyterhub_config.py");
    crate::common::ok(Command::new("python3").args(["-m", "py_compile"]).arg(&config));
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("bind_url = \"http://127.0.0.1:8000/jupyter/\""), "{text}");
    let names: Vec<&str> = resolved.plan.services.iter().map(|s| s.name.as_str()).collect();
    assert!(names.contains(&"jupyterhub") && names.contains(&"gitea"), "{names:?}");
    // Not on the Pi Zero (512 MB), and switched off by the variable.
    let zero = resolve(&repo("recipes/pi-zero.yaml"), &[]).unwrap();
    assert!(zero.plan.services.iter().all(|s| s.name != "jupyterhub"));
    let off = resolve(&repo("recipes/pi4.yaml"), &sets(&[("jupyterhub", "false")])).unwrap();
    assert!(!format!("{:?} {:?}", off.plan.steps, off.plan.overlays).contains("jupyterhub"));

    let script = repo("recipes/layers/scripts/jupyterhub-learners.sh");
    let root = tmp.path().join("root");
    let run = |csv: &str| {
        Command::new("sh")
            .arg(&script)
            .env("ROOT", &root)
            .env("DRY_RUN", "1")
            .env("IMGBUILD_JUPYTERHUB_USERS", csv)
            .output()
            .unwrap()
    };
    let out = run("name,password,admin\nada,lovelace-1843,admin\r\n\ngrace,cobol-1959\n");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("useradd --create-home -K HOME_MODE=0700 --shell /bin/bash ada")
            && said.contains("useradd --create-home -K HOME_MODE=0700 --shell /bin/bash grace")
    );
    let read = |f: &str| std::fs::read_to_string(root.join(f)).unwrap();
    assert_eq!(read("etc/jupyterhub/users"), "ada\ngrace\n");
    assert_eq!(read("etc/jupyterhub/admins"), "ada\n");
    assert_eq!(
        std::fs::read_link(root.join("etc/skel/shared")).unwrap(),
        Path::new("/srv/shared")
    );
    for (csv, why) in [
        ("Bad Name,pw", "is not a login name"),
        ("ada", "is not name,password[,admin]"),
        ("ada,", "has no password"),
        ("ada,pw,root", "the third field is `admin` or empty"),
    ] {
        let out = run(csv);
        assert!(!out.status.success(), "{csv} accepted");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(why),
            "{csv}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn paths_in_lists_resolve_against_the_layer_that_wrote_them() {
    // ci/pi4-server.yaml lives elsewhere than the layers whose steps and overlays it
    // inherits; every such path must still name the layer's own file.
    let r = resolve(&repo("ci/pi4-server.yaml"), &[]).unwrap();
    assert!(r.plan.overlays.len() >= 3);
    for o in &r.plan.overlays {
        assert!(o.is_dir(), "overlay {} does not exist", o.display());
    }
    let scripts: Vec<String> = r.plan.steps.iter().map(|s| format!("{:?}", s.command)).collect();
    let wifi = scripts
        .iter()
        .find(|s| s.contains("wifi-passphrase.sh"))
        .expect("the wifi step");
    assert!(
        wifi.contains("/recipes/layers/scripts/wifi-passphrase.sh") && !wifi.contains(".."),
        "{wifi}"
    );
}

#[test]
fn etherpad_runs_from_the_npm_tree_with_its_state_and_keys_outside_it() {
    let tmp = tempfile::tempdir().unwrap();
    let resolved = resolve(&repo("recipes/pi4.yaml"), &[]).unwrap();
    render_overlay("etherpad", &context(&resolved, &LockFile::default()), tmp.path());
    let read = |f: &str| std::fs::read_to_string(tmp.path().join(f)).unwrap();
    let settings: serde_json::Value = serde_json::from_str(&read("etc/etherpad/settings.json")).unwrap();
    assert_eq!(settings["ip"], "127.0.0.1");
    assert!(
        settings["users"].as_object().unwrap().is_empty(),
        "no admin account in the image"
    );
    let db = settings["dbSettings"]["filename"].as_str().unwrap();
    assert!(db.starts_with("/var/lib/etherpad/"), "{db}");
    let port = settings["port"].as_u64().unwrap();
    let nginx = read("etc/nginx/carpentries.d/etherpad.conf");
    assert!(
        nginx.contains(&format!("proxy_pass http://127.0.0.1:{port}/;")),
        "{nginx}"
    );
    let unit = read("etc/systemd/system/etherpad.service");
    for want in [
        "User=etherpad",
        "StateDirectory=etherpad",
        "ReadWritePaths=/var/lib/etherpad",
        "/usr/bin/node /opt/etherpad/src/node/server.js",
        "--apikey /var/lib/etherpad/APIKEY.txt",
        "--sessionkey /var/lib/etherpad/SESSIONKEY.txt",
    ] {
        assert!(unit.contains(want), "{want}: {unit}");
    }
    // Etherpad finds its root as the parent of `src`, and plugins find it by name.
    assert_eq!(
        std::fs::read_link(tmp.path().join("opt/etherpad/node_modules/ep_etherpad-lite")).unwrap(),
        Path::new("../src")
    );
    let npm: Vec<_> = resolved
        .plan
        .content
        .iter()
        .flat_map(|c| &c.sources)
        .filter_map(|s| match s {
            imgbuild::recipe::plan_content::SourcePlan::Npm(n) => Some((n.name.as_str(), n.target.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(npm, [("ep_etherpad-lite", "opt/etherpad/src")]);
    assert!(
        resolved
            .plan
            .services
            .iter()
            .any(|s| s.name == "etherpad" && s.path == "/etherpad/")
    );
    // Not on the Pi Zero (512 MB), and switched off by the variable.
    for (recipe, set) in [
        ("recipes/pi-zero.yaml", vec![]),
        ("recipes/pi4.yaml", sets(&[("etherpad", "false")])),
    ] {
        let r = resolve(&repo(recipe), &set).unwrap();
        assert!(r.plan.services.iter().all(|s| s.name != "etherpad"), "{recipe}");
        let all = format!("{:?} {:?} {:?}", r.plan.steps, r.plan.overlays, r.plan.content);
        assert!(!all.contains("etherpad"), "{recipe}: {all}");
    }
}

/// A stand-in for Gitea's HTTP API (dl.gitea.com is out of reach, so no real Gitea runs
/// here): answers `/api/v1/version`, records each `POST /api/v1/repos/migrate` (headers
/// and body) and answers it 201, or 409 for a name it has seen.
fn fake_gitea_api() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}/api/v1", listener.local_addr().unwrap());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut head = String::new();
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                head.push_str(&line);
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let body = String::from_utf8_lossy(&body).into_owned();
            let status = if head.starts_with("POST /api/v1/repos/migrate") {
                let mut seen = log.lock().unwrap();
                let dup = seen.iter().any(|s| s.ends_with(&body));
                seen.push(format!("{head}{body}"));
                if dup { "409 Conflict" } else { "201 Created" }
            } else if head.starts_with("GET /api/v1/version") {
                "200 OK"
            } else {
                "404 Not Found"
            };
            let _ = write!(
                &stream,
                "HTTP/1.1 {status}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
            );
        }
    });
    (base, seen)
}

#[test]
fn gitea_seed_makes_the_mirrored_repositories_the_admins_on_first_boot() {
    let tmp = tempfile::tempdir().unwrap();
    let recipe = crate::common::write(
        tmp.path(),
        "seed.yaml",
        &format!(
            "extends: {}\ncontent:\n  git:\n    planets: {{url: \"https://github.com/swcarpentry/planets.git\"}}\n",
            repo("recipes/pi4.yaml").display()
        ),
    );
    let resolved = resolve(&recipe, &[]).unwrap();
    render_gitea(&resolved, tmp.path());
    let list = tmp.path().join("etc/gitea/seed-repositories");
    assert_eq!(
        std::fs::read_to_string(&list).unwrap(),
        "/var/www/html/git/planets.git\n"
    );
    let off = resolve(&recipe, &sets(&[("gitea_seed", "false")])).unwrap();
    let dir = tmp.path().join("off");
    render_gitea(&off, &dir);
    assert_eq!(
        std::fs::read_to_string(dir.join("etc/gitea/seed-repositories"))
            .unwrap()
            .trim(),
        ""
    );
    let link = tmp
        .path()
        .join("etc/systemd/system/multi-user.target.wants/gitea-seed.service");
    assert_eq!(std::fs::read_link(link).unwrap(), Path::new("../gitea-seed.service"));

    // The script against a stand-in gitea binary and API, twice listing one repository.
    std::fs::write(&list, "/srv/git/planets.git\n/srv/git/planets.git\n").unwrap();
    let fake = |admin: &str| {
        let f = tmp.path().join(format!("gitea-{admin}"));
        std::fs::write(
            &f,
            format!(
                "#!/bin/sh\ncase \"$*\" in\n  *'user list'*) printf 'ID   Username   Email   IsActive   IsAdmin\\n1    {admin}   a@b   true   true\\n' ;;\n  *generate-access-token*) echo tok123 ;;\nesac\n"
            ),
        )
        .unwrap();
        std::fs::set_permissions(&f, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        f
    };
    let (api, seen) = fake_gitea_api();
    let run = |gitea: &Path, done: &Path| {
        Command::new("sh")
            .arg(tmp.path().join("usr/local/sbin/gitea-seed"))
            .env("APP_INI", tmp.path().join("etc/gitea/app.ini"))
            .env("LIST", &list)
            .env("DONE", done)
            .env("GITEA", gitea)
            .env("API", &api)
            .env("GITEA_ADMIN", "instructor")
            .output()
            .unwrap()
    };
    let done = tmp.path().join("seeded");
    let out = run(&fake("instructor"), &done);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(done.is_file());
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("created instructor/planets") && said.contains("exists already"),
        "{said}"
    );
    let requests = seen.lock().unwrap().clone();
    assert_eq!(requests.len(), 2);
    assert!(
        requests[0].to_ascii_lowercase().contains("authorization: token tok123"),
        "{}",
        requests[0]
    );
    let body: serde_json::Value = serde_json::from_str(requests[0].rsplit("\r\n").next().unwrap()).unwrap();
    assert_eq!(body["clone_addr"], "/srv/git/planets.git");
    assert_eq!(body["repo_name"], "planets");
    assert_eq!(body["repo_owner"], "instructor");

    // No admin account (the build had no password): nothing is asked of Gitea.
    let done = tmp.path().join("seeded-no-admin");
    let out = run(&fake("somebody-else"), &done);
    assert!(out.status.success() && done.is_file());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no admin account `instructor`"));
    assert_eq!(seen.lock().unwrap().len(), 2);
}

#[test]
fn jupyterhub_takes_extra_pip_packages_for_the_images_python_and_platform() {
    let tmp = tempfile::tempdir().unwrap();
    let pip = |r: &Resolved| -> Vec<imgbuild::recipe::plan_pip::PipPlan> {
        r.plan
            .content
            .iter()
            .flat_map(|c| &c.sources)
            .filter_map(|s| match s {
                imgbuild::recipe::plan_content::SourcePlan::Pip(p) => Some(p.clone()),
                _ => None,
            })
            .collect()
    };
    assert!(
        pip(&resolve(&repo("recipes/pi4.yaml"), &[]).unwrap()).is_empty(),
        "none by default"
    );
    let recipe = crate::common::write(
        tmp.path(),
        "extra.yaml",
        &format!(
            "extends: {}\nfiles:\n  /usr/local/lib/python3.11/dist-packages:\n    pip: {{packages: [plotnine]}}\n",
            repo("recipes/pi4.yaml").display()
        ),
    );
    let found = pip(&resolve(&recipe, &[]).unwrap());
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].requirements, ["plotnine"]);
    assert_eq!(
        (found[0].python.as_str(), found[0].uv_platform.as_str()),
        ("3.11", "aarch64-manylinux_2_28")
    );
    assert!(pip(&resolve(&recipe, &sets(&[("jupyterhub", "false")])).unwrap()).is_empty());
}

/// The first-boot settings of a published image (rendered from pi4.yaml's layers): the
/// settings file's values (as a Windows editor saves them, CRLF) become the device's
/// Wi-Fi passphrase and Gitea admin password and are removed from the file; with none, two
/// devices make different random ones and write them to the credentials file; a passphrase
/// WPA2 refuses is replaced by a made one; a second boot changes nothing.
#[test]
fn first_boot_settings_apply_the_boot_partitions_file_or_make_random_secrets() {
    let tmp = tempfile::tempdir().unwrap();
    let resolved = resolve(&repo("recipes/pi4.yaml"), &[]).unwrap();
    render(&resolved, tmp.path());
    let script = tmp.path().join("usr/local/sbin/imgbuild-first-boot-settings");
    let conf = std::fs::read_to_string(tmp.path().join("etc/imgbuild/first-boot.conf")).unwrap();
    let template = std::fs::read_to_string(tmp.path().join("boot/firmware/imgbuild-settings.txt")).unwrap();
    assert!(conf.contains("GITEA_PASSWORD_FILE=/etc/gitea/admin-password"), "{conf}");
    let boot = |n: u32, settings: Option<&str>| {
        let dir = tmp.path().join(format!("device{n}"));
        for d in ["boot", "hostapd", "gitea", "state"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        if let Some(s) = settings {
            std::fs::write(dir.join("boot/imgbuild-settings.txt"), s).unwrap();
        }
        let local = conf
            .lines()
            .map(|l| match l.split_once('=') {
                Some(("PSK_FILE", _)) => format!("PSK_FILE={}", dir.join("hostapd/wpa_psk").display()),
                Some(("SETTINGS", _)) => format!("SETTINGS={}", dir.join("boot/imgbuild-settings.txt").display()),
                Some(("CREDENTIALS", _)) => {
                    format!("CREDENTIALS={}", dir.join("boot/imgbuild-credentials.txt").display())
                }
                Some(("GITEA_PASSWORD_FILE", _)) => {
                    format!("GITEA_PASSWORD_FILE={}", dir.join("gitea/admin-password").display())
                }
                Some(("ROOT_CREDENTIALS", _)) => {
                    format!("ROOT_CREDENTIALS={}", dir.join("state/root-credentials.txt").display())
                }
                Some(("GITEA_DONE", _)) => format!("GITEA_DONE={}", dir.join("gitea/done").display()),
                Some(("DONE", _)) => format!("DONE={}", dir.join("state/done").display()),
                // No such account here: the password part needs a real system (QEMU test).
                Some(("USERNAME", _)) => "USERNAME=no-such-user-imgbuild".into(),
                _ => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n");
        let conf_file = dir.join("first-boot.conf");
        std::fs::write(&conf_file, local).unwrap();
        let run = || {
            // SIGPIPE ignored, as systemd starts services (IgnoreSIGPIPE=yes): a pipe
            // cut off mid-write then shows as a "write error" in the journal.
            let out = Command::new("sh")
                .args(["-c", "trap '' PIPE; exec sh \"$0\"", &script.display().to_string()])
                .env("CONF", &conf_file)
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{stderr}");
            assert!(!stderr.contains("error"), "noise on a clean run: {stderr}");
            out
        };
        let out = run();
        let read = |p: &str| std::fs::read_to_string(dir.join(p)).unwrap_or_default();
        let facts = (
            read("hostapd/wpa_psk"),
            read("gitea/admin-password"),
            read("boot/imgbuild-credentials.txt"),
            read("boot/imgbuild-settings.txt"),
        );
        // A second boot changes nothing.
        std::fs::write(
            dir.join("boot/imgbuild-settings.txt"),
            "wifi_passphrase=other passphrase\n",
        )
        .unwrap();
        run();
        assert_eq!(
            read("hostapd/wpa_psk"),
            facts.0,
            "the second boot changed the passphrase"
        );
        (facts, String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let set = template
        .replace("wifi_passphrase=", "wifi_passphrase= correct horse battery ")
        .replace("gitea_admin_password=", "gitea_admin_password=pad-and-git")
        .replace('\n', "\r\n");
    let ((psk, gitea, creds, left), _) = boot(1, Some(&set));
    assert_eq!(psk, "00:00:00:00:00:00 correct horse battery\n");
    assert_eq!(gitea, "pad-and-git\n");
    assert!(
        !left.contains("correct horse") && !left.contains("pad-and-git"),
        "{left}"
    );
    assert!(left.contains("# Applied at first boot"), "{left}");
    assert!(creds.is_empty(), "nothing was made, so nothing to tell: {creds}");

    let ((psk_a, gitea_a, creds_a, _), _) = boot(2, Some(&template));
    let ((psk_b, gitea_b, creds_b, _), _) = boot(3, None);
    let pass = |psk: &str| psk.trim().strip_prefix("00:00:00:00:00:00 ").unwrap().to_string();
    assert_eq!(pass(&psk_a).len(), 12);
    assert_ne!(pass(&psk_a), pass(&psk_b), "two devices made the same passphrase");
    assert_ne!(gitea_a, gitea_b);
    for (creds, psk, gitea) in [(&creds_a, &psk_a, &gitea_a), (&creds_b, &psk_b, &gitea_b)] {
        assert!(
            creds.contains(&format!("Wi-Fi network CarpentriesOffline, passphrase: {}", pass(psk))),
            "{creds}"
        );
        assert!(creds.contains(&format!("password: {}", gitea.trim())), "{creds}");
    }

    let short = template.replace("wifi_passphrase=", "wifi_passphrase=short");
    let ((psk, _, creds, _), err) = boot(4, Some(&short));
    assert!(err.contains("wifi_passphrase has 5 characters"), "{err}");
    assert_eq!(pass(&psk).len(), 12);
    assert!(creds.contains(&pass(&psk)), "{creds}");
}
