//! Several images from one recipe (`images:`): each is the recipe with its entry merged
//! over it, published as `<recipe>-<image>` with its own identifiers, and nothing is
//! published unless all were built.

use crate::common::*;
use std::path::Path;

/// A recipe making `head` and `node` from one root directory: the node has its own
/// overlay and layout, the head a variable of its own.
fn two_images(dir: &Path) -> std::path::PathBuf {
    std::fs::create_dir_all(dir.join("root/etc")).unwrap();
    std::fs::write(dir.join("root/etc/shared"), "in both\n").unwrap();
    std::fs::create_dir_all(dir.join("node-overlay/etc")).unwrap();
    std::fs::write(dir.join("node-overlay/etc/role.j2"), "{{ role }} of {{ image.name }}\n").unwrap();
    std::fs::create_dir_all(dir.join("layers")).unwrap();
    write(
        &dir.join("layers"),
        "gpt.yaml",
        "image:\n  table: gpt\n  partitions:\n    root: {type: root-x86-64, filesystem: ext4, mount: /}\n",
    );
    write(
        dir,
        "cluster.yaml",
        "vars: {role: none}\nrootfs: {dir: root}\noverlays: [node-overlay]\nimage:\n  table: mbr\n  partitions:\n    root: {filesystem: ext4, mount: /}\noutput: {compression: none}\nimages:\n  head:\n    vars: {role: head}\n  node:\n    extends: [layers/gpt.yaml]\n    vars: {role: compute}\n",
    )
}

#[test]
fn each_image_is_the_recipe_with_its_entry_merged_over_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let recipe = two_images(dir);
    let out = ok(imgbuild()
        .arg("--cache-dir")
        .arg(dir.join("cache"))
        .arg("--out")
        .arg(dir.join("out"))
        .arg(&recipe));
    let listed = text(&out);
    for name in ["cluster-head", "cluster-node"] {
        let img = dir.join(format!("out/{name}/{name}.img"));
        assert!(listed.contains(&img.display().to_string()), "{listed}");
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join(format!("out/{name}/manifest.json"))).unwrap()).unwrap();
        assert_eq!(manifest["name"], name);
    }
    let (head_table, head_parts) = sfdisk(&dir.join("out/cluster-head/cluster-head.img"));
    let (node_table, node_parts) = sfdisk(&dir.join("out/cluster-node/cluster-node.img"));
    assert_eq!(head_table, "dos", "the head keeps the recipe's MBR");
    assert_eq!(node_table, "gpt", "the node's entry extends a GPT layout");
    assert_ne!(
        head_parts[0].uuid, node_parts[0].uuid,
        "identifiers are seeded per image"
    );
    let cat = |name: &str, path: &str| {
        let img = dir.join(format!("out/{name}/{name}.img"));
        text(&ok(imgbuild().args(["inspect", "-q"]).arg(&img).args(["--cat", path])))
    };
    assert_eq!(cat("cluster-head", "/etc/shared"), "in both\n");
    assert_eq!(cat("cluster-head", "/etc/role"), "head of cluster-head\n");
    assert_eq!(cat("cluster-node", "/etc/role"), "compute of cluster-node\n");

    // `check` shows each image as a document of its own.
    let shown = text(&ok(imgbuild().arg("check").arg(&recipe)));
    assert_eq!(shown.matches("\n---\n").count(), 1, "{shown}");
    assert!(shown.contains("name: cluster-head") && shown.contains("name: cluster-node"));
}

#[test]
fn a_failing_image_publishes_none_of_them() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let recipe = two_images(dir);
    // The node's fixed root partition is too small for the root: the head was fine.
    std::fs::write(dir.join("root/etc/big"), vec![7u8; 3 << 20]).unwrap();
    let text = std::fs::read_to_string(&recipe).unwrap();
    std::fs::write(
        &recipe,
        text.replace(
            "vars: {role: compute}\n",
            "vars: {role: compute}\n    image: {partitions: {root: {size: 1MiB}}}\n",
        ),
    )
    .unwrap();
    let (code, err) = fails(
        imgbuild()
            .arg("--cache-dir")
            .arg(dir.join("cache"))
            .arg("--out")
            .arg(dir.join("out"))
            .arg(&recipe),
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("image.partitions.root.size"), "{err}");
    for name in ["cluster-head", "cluster-node"] {
        let left: Vec<_> = std::fs::read_dir(dir.join(format!("out/{name}")))
            .map(|d| d.map(|e| e.unwrap().file_name()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "{name}: a failed build left {left:?}");
    }
}

#[test]
fn an_image_entry_may_not_rename_itself_nest_images_or_fetch_content() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    for (entry, want) in [
        ("name: other", "images.a.name: an image's name is `<recipe>-<image>`"),
        (
            "images: {b: {}}",
            "images.a.images: images cannot have images of their own",
        ),
        (
            "content: {lessons: [software-carpentry]}",
            "images.a.content: content is fetched once for all the images",
        ),
        (
            "extends: [missing.yaml]",
            "images.a.extends: parent recipe `missing.yaml` not found",
        ),
    ] {
        let recipe = write(
            dir,
            "r.yaml",
            &format!(
                "rootfs: {{dir: root}}\nimage: {{table: mbr, partitions: {{root: {{filesystem: ext4, mount: /}}}}}}\nimages:\n  a: {{{entry}}}\n"
            ),
        );
        let (code, err) = fails(imgbuild().arg("check").arg(&recipe));
        assert_eq!(code, 2, "{entry}: {err}");
        assert!(err.contains(want), "{entry}: {err}");
    }
}
