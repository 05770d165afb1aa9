//! `extlinux.conf` as U-Boot's standard boot reads it (doc/develop/distro.rst, the
//! syslinux subset in boot/pxe_utils.c): a `default` label and `label` blocks with
//! `linux`/`kernel`, `initrd`, `fdt`/`devicetree`, `fdtdir` and `append`.

/// One `label` block.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entry {
    pub label: String,
    pub kernel: Option<String>,
    pub initrd: Option<String>,
    pub fdt: Option<String>,
    pub fdtdir: Option<String>,
    pub append: String,
}

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    pub default: Option<String>,
    pub entries: Vec<Entry>,
}

impl Config {
    /// The entry U-Boot boots when nobody chooses: `default`'s label, else the first.
    pub fn default_entry(&self) -> Option<&Entry> {
        match &self.default {
            Some(d) => self.entries.iter().find(|e| &e.label == d),
            None => self.entries.first(),
        }
    }
}

/// Parses the file. Keywords are case-insensitive; unknown lines (menu, prompt, timeout)
/// are skipped.
pub fn parse(text: &str) -> Config {
    let mut c = Config::default();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let value = value.trim().to_string();
        let key = key.to_ascii_lowercase();
        if key == "label" {
            c.entries.push(Entry {
                label: value,
                ..Default::default()
            });
            continue;
        }
        if key == "default" {
            c.default = Some(value);
            continue;
        }
        let Some(e) = c.entries.last_mut() else { continue };
        match key.as_str() {
            "linux" | "kernel" => e.kernel = Some(value),
            "initrd" => e.initrd = Some(value),
            "fdt" | "devicetree" => e.fdt = Some(value),
            "fdtdir" | "devicetreedir" => e.fdtdir = Some(value),
            "append" => e.append = value,
            _ => {}
        }
    }
    c
}

/// `text` without the device-tree lines (`fdt`, `devicetree`, `fdtdir`): what a machine
/// whose firmware supplies its own device tree (QEMU's virt) boots.
pub fn without_fdt(text: &str) -> String {
    text.lines()
        .filter(|l| {
            let key = l.split_whitespace().next().unwrap_or_default().to_ascii_lowercase();
            !matches!(key.as_str(), "fdt" | "devicetree" | "fdtdir" | "devicetreedir")
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As u-boot-menu 4.2 writes it.
    const MENU: &str = "## /boot/extlinux/extlinux.conf\n##\n\ndefault l0\nmenu title U-Boot menu\nprompt 1\ntimeout 30\n\n\nlabel l0\n\tmenu label Debian on a Radxa ROCK 4C+ 6.12.117+deb13-arm64\n\tlinux /boot/vmlinuz-6.12.117+deb13-arm64\n\tinitrd /boot/initrd.img-6.12.117+deb13-arm64\n\tfdt /usr/lib/linux-image-6.12.117+deb13-arm64/rockchip/rk3399-rock-4c-plus.dtb\n\t\n\tappend root=PARTUUID=89a56f65-715c-4c64-9ce7-3844cdab8e6e ro rootwait\n\nlabel l0r\n\tmenu label rescue\n\tlinux /boot/vmlinuz-6.12.117+deb13-arm64\n\tappend root=PARTUUID=89a56f65 ro single\n";

    #[test]
    fn the_default_entry_names_kernel_initrd_fdt_and_root() {
        let c = parse(MENU);
        assert_eq!(c.entries.len(), 2);
        let e = c.default_entry().unwrap();
        assert_eq!(e.label, "l0");
        assert_eq!(e.kernel.as_deref(), Some("/boot/vmlinuz-6.12.117+deb13-arm64"));
        assert_eq!(e.initrd.as_deref(), Some("/boot/initrd.img-6.12.117+deb13-arm64"));
        assert!(e.fdt.as_deref().unwrap().ends_with("rockchip/rk3399-rock-4c-plus.dtb"));
        assert!(e.append.starts_with("root=PARTUUID=89a56f65-715c"));
        assert_eq!(parse("label a\nkernel /k\n").default_entry().unwrap().label, "a");
        assert!(parse("default b\nlabel a\n").default_entry().is_none());
    }

    #[test]
    fn dropping_the_device_tree_keeps_everything_else() {
        let dropped = without_fdt(MENU);
        let c = parse(&dropped);
        let e = c.default_entry().unwrap();
        assert_eq!(e.fdt, None);
        assert_eq!(e.initrd.as_deref(), Some("/boot/initrd.img-6.12.117+deb13-arm64"));
        assert_eq!(dropped.lines().count(), MENU.lines().count() - 1);
    }
}
