//! The command line: `check` prints the resolved recipe, `--set` overrides, `schema`
//! prints a usable JSON Schema, and usage errors exit 2.

use crate::common::*;

#[test]
fn check_prints_merged_and_templated_recipe() {
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        "layers/base.yaml",
        "vars: {hostname: base, extra: [a]}\nimage:\n  table: mbr\n  partitions:\n    boot: {filesystem: vfat, size: 64MiB}\n    root: {filesystem: ext4, label: '{{ hostname }}'}\n",
    );
    let child = write(
        tmp.path(),
        "child.yaml",
        "extends: layers/base.yaml\nvars: {hostname: child, extra: [b]}\nimage:\n  partitions:\n    boot: {size: 128MiB}\n    data: {filesystem: ext4, size: 1GiB, label: 'd-{{ partitions.root.partuuid }}'}\n",
    );
    let out = text(&ok(imgbuild().arg("check").arg(&child)));
    let v: serde_norway::Value = serde_norway::from_str(&out).unwrap();
    assert_eq!(v["name"].as_str(), Some("child"));
    assert_eq!(
        v["image"]["partitions"]["boot"]["size"].as_str(),
        Some("128MiB"),
        "child wins"
    );
    assert_eq!(
        v["image"]["partitions"]["boot"]["filesystem"].as_str(),
        Some("vfat"),
        "parent kept"
    );
    assert_eq!(
        v["image"]["partitions"]["root"]["label"].as_str(),
        Some("child"),
        "templated with the child's var"
    );
    let extra: Vec<&str> = v["vars"]["extra"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    assert_eq!(extra, ["a", "b"], "lists append");
    let disk = v["image"]["disk_id"]
        .as_str()
        .unwrap()
        .trim_start_matches("0x")
        .to_string();
    assert_eq!(
        v["image"]["partitions"]["data"]["label"].as_str(),
        Some(format!("d-{disk}-02").as_str()),
        "partition IDs in templates"
    );
    let keys: Vec<&str> = v["image"]["partitions"]
        .as_mapping()
        .unwrap()
        .keys()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert_eq!(keys, ["boot", "root", "data"]);
}

#[test]
fn set_overrides_a_variable_last() {
    let tmp = tempfile::tempdir().unwrap();
    let r = write(
        tmp.path(),
        "r.yaml",
        "vars: {hostname: pi}\nimage:\n  table: gpt\n  partitions:\n    root: {filesystem: ext4, label: '{{ hostname }}'}\n",
    );
    let out = text(&ok(imgbuild().args(["check", "--set", "hostname=lab42"]).arg(&r)));
    assert!(out.contains("label: lab42"), "{out}");
}

#[test]
fn replace_tag_replaces_parent_list() {
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        "p.yaml",
        "vars: {pkgs: [a, b]}\nimage: {table: gpt, partitions: {root: {filesystem: ext4}}}\n",
    );
    let c = write(tmp.path(), "c.yaml", "extends: p.yaml\nvars: {pkgs: !replace [c]}\n");
    let out = text(&ok(imgbuild().arg("check").arg(&c)));
    let v: serde_norway::Value = serde_norway::from_str(&out).unwrap();
    assert_eq!(
        v["vars"]["pkgs"],
        serde_norway::from_str::<serde_norway::Value>("[c]").unwrap()
    );
}

#[test]
fn derived_ids_are_stable_and_pinnable() {
    let tmp = tempfile::tempdir().unwrap();
    let r = write(
        tmp.path(),
        "r.yaml",
        "image:\n  table: mbr\n  disk_id: '0x1234abcd'\n  partitions:\n    boot: {filesystem: vfat, size: 64MiB, uuid: 1234-ABCD}\n    root: {filesystem: ext4}\n",
    );
    let a = text(&ok(imgbuild().arg("check").arg(&r)));
    assert!(
        a.contains("disk_id: '0x1234abcd'") || a.contains("disk_id: 0x1234abcd"),
        "{a}"
    );
    assert!(a.contains("uuid: 1234-ABCD"), "{a}");
    assert_eq!(a, text(&ok(imgbuild().arg("check").arg(&r))), "same recipe, same IDs");
}

#[test]
fn schema_is_json_schema_of_the_recipe() {
    let out = ok(imgbuild().arg("schema"));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["$schema"].as_str().unwrap().contains("json-schema.org"));
    for key in ["extends", "vars", "rootfs", "image", "output"] {
        assert!(v["properties"].get(key).is_some(), "schema lacks {key}");
    }
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("\"partitions\"") && text.contains("\"fat32-lba\"") || text.contains("fat32-lba"));
}

/// Validates YAML files against a JSON Schema with python3-jsonschema (a real validator,
/// as an editor's would be); prints `FILE ok` or `FILE bad PATH: MESSAGE` per file.
const VALIDATE: &str = r#"
import json, sys, yaml, jsonschema
class Loader(yaml.SafeLoader): pass
Loader.add_constructor("!replace", lambda l, n: l.construct_sequence(n))
validator = jsonschema.Draft202012Validator(json.load(open(sys.argv[1])))
for f in sys.argv[2:]:
    errors = list(validator.iter_errors(yaml.load(open(f), Loader=Loader)))
    print(f, "ok" if not errors else "bad " + "; ".join(f"{list(e.path)}: {e.message[:100]}" for e in errors[:3]))
"#;

#[test]
fn every_recipe_and_layer_in_the_repository_matches_the_schema() {
    let tmp = tempfile::tempdir().unwrap();
    let schema = tmp.path().join("schema.json");
    std::fs::write(&schema, ok(imgbuild().arg("schema")).stdout).unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["recipes", "recipes/layers", "ci"] {
        for e in std::fs::read_dir(root.join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "yaml") {
                files.push(p);
            }
        }
    }
    assert!(files.len() >= 10, "{files:?}");
    // Conditions, list tags and templates in typed fields, in a file of its own.
    let bad = write(tmp.path(), "bad.yaml", "steps:\n  - {name: x, runn: true}\n");
    let good = write(
        tmp.path(),
        "good.yaml",
        "output: {compression: \"{{ c }}\"}\nrootfs:\n  packages: !replace [a, {when: \"{{ x }}\", then: [b]}]\nsteps:\n  - {name: x, run: y, when: false}\n",
    );
    let out = ok(crate::common::tool("python3")
        .arg("-c")
        .arg(VALIDATE)
        .arg(&schema)
        .args(&files)
        .arg(&good)
        .arg(&bad));
    let report = text(&out);
    for f in files.iter().chain([&good]) {
        assert!(report.contains(&format!("{} ok", f.display())), "{report}");
    }
    assert!(
        report.contains(&format!("{} bad", bad.display())) && report.contains("runn"),
        "{report}"
    );
}

#[test]
fn no_recipe_is_a_usage_error() {
    let (code, err) = fails(&mut imgbuild());
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no recipe given"), "{err}");
}

#[test]
fn example_recipes_check() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for r in [
        "recipes/example-mbr.yaml",
        "recipes/example-gpt.yaml",
        "recipes/pi-zero.yaml",
        "recipes/pi4.yaml",
        "recipes/pi5.yaml",
    ] {
        ok(imgbuild().arg("check").arg(root.join(r)));
    }
    // The Pi recipes point the firmware and fstab at the image's own root partition.
    let pi4 = text(&ok(imgbuild().arg("check").arg(root.join("recipes/pi4.yaml"))));
    let v: serde_norway::Value = serde_norway::from_str(&pi4).unwrap();
    assert_eq!(v["image"]["table"].as_str(), Some("mbr"));
    assert_eq!(v["image"]["partitions"]["boot"]["type"].as_str(), Some("fat32-lba"));
    assert_eq!(
        v["image"]["partitions"]["boot"]["mount"].as_str(),
        Some("/boot/firmware")
    );
    assert_eq!(v["rootfs"]["architecture"].as_str(), Some("arm64"));
}

#[test]
fn templated_typed_fields_are_checked_after_rendering() {
    let tmp = tempfile::tempdir().unwrap();
    let r = write(
        tmp.path(),
        "r.yaml",
        "vars: {c: xz}\nimage: {table: gpt, partitions: {root: {filesystem: ext4}}}\noutput: {compression: '{{ c }}'}\n",
    );
    let out = text(&ok(imgbuild().args(["check", "--set", "c=zstd"]).arg(&r)));
    assert!(out.contains("compression: zstd"), "{out}");
    let (code, err) = fails(imgbuild().args(["check", "--set", "c=zip"]).arg(&r));
    assert_eq!(code, 2);
    assert!(err.contains("r.yaml: output.compression: unknown value `zip`"), "{err}");
}

/// `imgbuild doctor` names each unreachable host with the recipe's switch that leaves
/// it out, exits 1, and passes once the recipe is given that switch.
#[test]
fn doctor_names_unreachable_hosts_and_the_switch_that_leaves_them_out() {
    let tmp = tempfile::tempdir().unwrap();
    // A port just closed: connecting is refused at once.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let recipe = write(
        tmp.path(),
        "r.yaml",
        &format!(
            "name: r\nvars: {{mirror_files: true}}\ncontent:\n  dest: /srv\n  files:\n    tool:\n      when: '{{{{ mirror_files }}}}'\n      url: http://127.0.0.1:{port}/tool.bin\n      sha256: '{}'\n      path: tools\n",
            "0".repeat(64)
        ),
    );
    let out = imgbuild()
        .args(["doctor", "--timeout", "2"])
        .arg(&recipe)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let line = stdout
        .lines()
        .find(|l| l.contains("127.0.0.1 is unreachable"))
        .unwrap_or_else(|| panic!("no line for the closed port:\n{stdout}"));
    assert!(line.starts_with("problem: "), "{line}");
    assert!(line.contains(&format!("http://127.0.0.1:{port}/tool.bin")), "{line}");
    assert!(line.contains("`--set mirror_files=false`"), "{line}");
    let out = ok(imgbuild().args(["doctor", "--set", "mirror_files=false"]).arg(&recipe));
    assert!(text(&out).contains("doctor: all is well"), "{}", text(&out));
}
