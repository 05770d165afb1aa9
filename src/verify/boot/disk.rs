//! The disk the test boots: a sparse copy of the image grown to a power-of-two size
//! (QEMU's raspi machines refuse other SD card sizes, and the free space lets the
//! image's first-boot grow show), with the boot probe written into the copy's ext4 root
//! by `debugfs` at the partition's offset — no mount, no root, the image untouched.

use super::probe;
use crate::process::Cmd;
use crate::report::Reporter;
use crate::verify::inspect::{FoundPartition, cat};
use anyhow::{Context, Result, anyhow, bail};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// The copy's size for an image of `image_size` bytes: the next power of two at least
/// twice as large (so the root can grow by at least the image's size). `None` when
/// the image is empty or that size does not fit in 64 bits.
pub fn grown_size(image_size: u64) -> Option<u64> {
    if image_size == 0 {
        return None;
    }
    image_size.checked_mul(2)?.checked_next_power_of_two()
}

/// Copies `src` into `dst` (which must be a new, empty file), writing only non-zero
/// blocks so the copy is as sparse as the image, then sets its length to `size`.
pub fn sparse_copy(src: &Path, dst: &File, size: u64, reporter: &dyn Reporter) -> Result<()> {
    const CHUNK: usize = 1 << 20;
    const BLOCK: usize = 4096;
    let input = File::open(src).with_context(|| format!("opening {}", src.display()))?;
    let len = input.metadata()?.len();
    if size < len {
        bail!("cannot copy {len} bytes into {size}");
    }
    dst.set_len(size).context("sizing the copy")?;
    let mut task = reporter.task("copy image", len);
    let mut buf = vec![0u8; CHUNK];
    let mut at = 0u64;
    while at < len {
        let n = CHUNK.min((len - at) as usize);
        let chunk = &mut buf[..n];
        input
            .read_exact_at(chunk, at)
            .with_context(|| format!("reading {} at byte {at}", src.display()))?;
        for (i, block) in chunk.chunks(BLOCK).enumerate() {
            if block.iter().any(|&b| b != 0) {
                dst.write_all_at(block, at + (i * BLOCK) as u64)
                    .context("writing the copy")?;
            }
        }
        at += n as u64;
        task.advance(n as u64);
    }
    task.finish();
    Ok(())
}

/// Writes the probe script and unit into the ext4 file system of partition `root` of
/// `disk`, enables the unit, and reads everything back to be sure it landed.
/// What the probe in the copy does beyond reporting.
pub struct ProbeSetup<'a> {
    /// Keep the guest up for the host's HTTP checks (and DHCP on its Ethernet).
    pub hold: bool,
    /// Where it writes its report.
    pub tty: &'a str,
    /// Load a simulated Wi-Fi radio that can be an access point (mac80211_hwsim).
    pub wifi_radio: bool,
    /// Units whose state it reports.
    pub units: &'a [String],
}

pub fn inject_probe(disk: &Path, root: &FoundPartition, workdir: &Path, setup: &ProbeSetup) -> Result<()> {
    let (hold, tty) = (setup.hold, setup.tty);
    let mut files: Vec<(String, &str, &str)> = vec![
        (probe::script(setup.units), probe::SCRIPT_PATH, "0100755"),
        (probe::unit(tty), probe::UNIT_PATH, "0100644"),
    ];
    if hold {
        files.push(("hold\n".into(), probe::HOLD_PATH, "0100644"));
        files.push((probe::NETWORK.into(), probe::NETWORK_PATH, "0100644"));
    }
    if setup.wifi_radio {
        files.push((probe::RADIO.into(), probe::RADIO_PATH, "0100644"));
    }
    let mut cmds = String::new();
    // debugfs has no `mkdir -p`; an existing directory only makes it complain.
    for path in files.iter().map(|f| f.1).chain([probe::UNIT_LINK]) {
        for dir in ancestors(path) {
            cmds.push_str(&format!("mkdir {dir}\n"));
        }
    }
    for (i, (text, dst, mode)) in files.iter().enumerate() {
        let src = workdir.join(format!("probe-file-{i}"));
        fs_err::write(&src, text)?;
        let src = src.to_str().ok_or_else(|| anyhow!("{} is not UTF-8", src.display()))?;
        if src.contains(char::is_whitespace) || src.contains('"') {
            bail!("debugfs cannot take the path {src:?}; set TMPDIR to a plain path");
        }
        cmds.push_str(&format!("write {src} {dst}\n"));
        // The file takes the host file's owner and mode; the booted system wants root's.
        cmds.push_str(&format!("set_inode_field {dst} mode {mode}\n"));
        cmds.push_str(&format!("set_inode_field {dst} uid 0\n"));
        cmds.push_str(&format!("set_inode_field {dst} gid 0\n"));
    }
    cmds.push_str(&format!("symlink {} {}\n", probe::UNIT_LINK, probe::UNIT_PATH));
    // A probe that writes to a serial port itself needs it alone: the login prompt's
    // agetty hangs the port up when it starts (vhangup), killing a probe already there.
    let getty = probe::getty_of(tty);
    if let Some(unit) = &getty {
        cmds.push_str(&format!("symlink {unit} /dev/null\n"));
    }
    let cmd_file = workdir.join("debugfs.cmds");
    fs_err::write(&cmd_file, &cmds)?;
    let target = format!("{}?offset={}", disk.display(), root.start);
    // debugfs exits 0 even when a request fails, so the result is checked by reading
    // the files back below; its output only goes into the error.
    let out = Cmd::new("debugfs")
        .arg("-w")
        .arg("-f")
        .arg(&cmd_file)
        .arg(&target)
        .run()
        .context("writing the boot probe into the copy's root file system")?;
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    let check = |path: &str, want: &str| -> Result<()> {
        let got = cat(disk, path, Some(root.number))
            .with_context(|| format!("debugfs did not write {path}:\n{}", said.trim()))?;
        if got != want.as_bytes() {
            bail!("{path} in the copy differs from what was written:\n{}", said.trim());
        }
        Ok(())
    };
    for (text, dst, _) in &files {
        check(dst, text)?;
    }
    // Read through the link: it resolves inside the file system to the unit.
    check(probe::UNIT_LINK, &probe::unit(tty))?;
    if let Some(unit) = getty {
        let out = Cmd::new("debugfs")
            .arg("-R")
            .arg(format!("stat {unit}"))
            .arg(&target)
            .run()
            .context("reading back the masked login prompt")?;
        let stat = String::from_utf8_lossy(&out.stdout);
        if !stat.contains("Type: symlink") || !stat.contains("/dev/null") {
            bail!("debugfs did not mask {unit} in the copy:\n{}", said.trim());
        }
    }
    Ok(())
}

/// Replaces each (path, text) in the ext4 file system of partition `root` of `disk` (a
/// root-owned 0644 file), reading each back to be sure it landed.
pub fn replace_files(disk: &Path, root: &FoundPartition, workdir: &Path, files: &[(String, String)]) -> Result<()> {
    let mut cmds = String::new();
    for (i, (path, text)) in files.iter().enumerate() {
        let src = workdir.join(format!("replaced-{i}"));
        fs_err::write(&src, text)?;
        let src = src.to_str().ok_or_else(|| anyhow!("{} is not UTF-8", src.display()))?;
        if src.contains(char::is_whitespace) || src.contains('"') || path.contains(char::is_whitespace) {
            bail!("debugfs cannot take the path {src:?} or {path:?}; set TMPDIR to a plain path");
        }
        cmds.push_str(&format!(
            "rm {path}
write {src} {path}
"
        ));
        cmds.push_str(&format!(
            "set_inode_field {path} mode 0100644
set_inode_field {path} uid 0
set_inode_field {path} gid 0
"
        ));
    }
    let cmd_file = workdir.join("debugfs-replace.cmds");
    fs_err::write(&cmd_file, &cmds)?;
    let out = Cmd::new("debugfs")
        .arg("-w")
        .arg("-f")
        .arg(&cmd_file)
        .arg(format!("{}?offset={}", disk.display(), root.start))
        .run()
        .context("replacing files in the copy's root file system")?;
    for (path, text) in files {
        let got = cat(disk, path, Some(root.number)).with_context(|| format!("debugfs did not write {path}"))?;
        if got != text.as_bytes() {
            bail!(
                "{path} in the copy differs from what was written:\n{}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
    }
    Ok(())
}

/// The parent directories of an absolute path, outermost first (`/a/b/c` → `/a`, `/a/b`).
fn ancestors(path: &str) -> Vec<String> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    (1..parts.len()).map(|n| format!("/{}", parts[..n].join("/"))).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn ancestors_are_outermost_first() {
        assert_eq!(
            super::ancestors("/usr/local/sbin/x"),
            ["/usr", "/usr/local", "/usr/local/sbin"]
        );
        assert!(super::ancestors("/x").is_empty());
    }
}
