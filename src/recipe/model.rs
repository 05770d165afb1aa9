//! The raw recipe: exactly what a YAML file may say, with no I/O and no defaults.
//!
//! Every field is optional so that a recipe that `extends` another may say only what it
//! changes; [`super::plan`] applies defaults and checks what a build needs. Unknown keys
//! are errors (`deny_unknown_fields`), and the JSON Schema printed by `imgbuild schema`
//! is derived from these types.

use super::merge_list::MergeList;
use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One recipe file.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    /// Image name: output file names and the seed of derived UUIDs. Default: the file name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// One line saying what the image is for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Parent recipes (paths relative to this file), merged in order before this one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extends: Option<OneOrMany>,
    /// Variables for `{{ name }}` templates in recipe strings; `--set NAME=VALUE` overrides.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vars: Option<IndexMap<String, VarValue>>,
    /// Timestamp written into file systems; the `SOURCE_DATE_EPOCH` environment variable wins.
    /// Default: the newest modification time in the root file system.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_date_epoch: Option<i64>,
    /// Where the root file system comes from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rootfs: Option<RootfsSpec>,
    /// Boot loaders made on the build host by name (`u-boot`): built from a Debian source
    /// package or downloaded; `image.blobs` place their files (`firmware: u-boot/idbloader.img`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub firmware: Option<IndexMap<String, Option<super::model_firmware::FirmwareSpec>>>,
    /// The disk image: partition table, partitions and raw blobs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageSpec>,
    /// What files the build writes besides the raw image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<OutputSpec>,
    /// Directories (relative to the recipe) copied into the root file system after the
    /// steps; `*.j2` files are rendered with the recipe's variables and lose the suffix.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overlays: Option<MergeList<String>>,
    /// Modes and owners for paths in the root file system, applied after the overlays;
    /// with `url` (or `latest`), a file downloaded on the build host and put there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<IndexMap<String, Option<FileAttrs>>>,
    /// Commands run inside the target root file system (chroot; qemu-user for a foreign
    /// architecture), in order, after the bootstrap and before the overlays.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps: Option<MergeList<StepSpec>>,
    /// Mirrors and downloads fetched on the build host and served from the image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<super::model_content::ContentSpec>,
    /// Web services the image runs, by name: listed on the landing page (templates see
    /// them as `services`). Service layers add theirs, switched by `when:`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub services: Option<IndexMap<String, Option<ServiceSpec>>>,
    /// How `imgbuild release` publishes the image: its title, boards and Raspberry Pi
    /// Imager entry, and where the files are downloaded from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release: Option<ReleaseSpec>,
    /// A teaching cluster (head and compute nodes on a private LAN) whose configuration
    /// files the images' templates write from it (`cluster` in templates).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<super::model_cluster::ClusterSpec>,
    /// Several images from this one recipe, by name: each is this recipe with the entry
    /// merged over it (its own `extends`, variables, steps, overlays, layout, firmware).
    /// What they share — the bootstrap and the steps they have in common — is built once;
    /// each is published as `<name>-<image>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub images: Option<IndexMap<String, Option<Box<Recipe>>>>,
}

/// How `imgbuild release` publishes an image.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseSpec {
    /// Its name in Raspberry Pi Imager's list and the release notes (default: the
    /// recipe's name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The boards it runs on, for people (`Raspberry Pi 4`), listed in the release notes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boards: Option<MergeList<String>>,
    /// Raspberry Pi Imager's device tags (`pi4-64bit`, `pi3-64bit`, `pi1-32bit`, …): an
    /// image with tags gets an entry in the Imager repository file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub imager_devices: Option<MergeList<String>>,
    /// The project's web site (Imager's info link).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub website: Option<String>,
    /// Base URL the release's files are downloaded from (a GitHub release:
    /// `https://github.com/OWNER/REPO/releases/download/TAG/`); `--url` overrides it.
    /// Default: the release directory itself (`file://`), for a local Imager.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Base URL of a host without the 2 GiB asset limit where each whole download is
    /// also published: Imager cannot join parts, so an image in parts points there.
    /// `--whole-url` overrides it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub whole_url: Option<String>,
}

/// A web service of the image, as people find it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    /// Its name for people (`Gitea`).
    pub title: String,
    /// Where it answers, relative to the server (`/gitea/`) or a full URL.
    pub path: String,
    /// One line on what it is for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Mode and owner of one path, and where its content comes from when it is downloaded.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileAttrs {
    /// Octal permission bits, e.g. `"0600"` or `"4755"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// `UID:GID` (numbers: the build host's names mean nothing in the image).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Download the file from here (fetched and verified on the build host, cached and
    /// pinned in the recipe's lock like `content.files`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The expected SHA-256 of `url`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Or find the file on an index page; the lock pins what was found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latest: Option<super::model_content::LatestSpec>,
    /// Or make this directory an npm package installed as an application
    /// (`ep_etherpad-lite@1.8.14`; a version or a dist-tag): the package's files with its
    /// production dependencies in `node_modules`, installed on the build host (no install
    /// scripts, no optional native add-ons) and pinned by a package-lock kept in the
    /// recipe's lock.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub npm: Option<String>,
    /// Or install Python packages (wheels only, with their dependencies) into this
    /// directory for the image's Python, on the build host: e.g.
    /// `/usr/local/lib/python3.11/dist-packages`. Pinned by the recipe's lock.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pip: Option<PipInstallSpec>,
}

/// Python packages installed into the root file system (`files: {DIR: {pip: ...}}`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PipInstallSpec {
    /// Requirements (`pandas`, `seaborn>=0.13`); none installs nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub packages: Option<super::merge_list::MergeList<String>>,
    /// The image's Python version, e.g. `"3.11"` for Debian bookworm (required).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub python: Option<String>,
    /// uv's `--python-platform`; default from `rootfs.architecture` (amd64, arm64).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// The simple index. Default `https://pypi.org/simple`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index_url: Option<String>,
    /// Install these packages alone, not their dependencies: the image's Debian packages
    /// provide those (e.g. `amdahl` on Debian's python3-mpi4py, which is built for
    /// Debian's MPI).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_deps: Option<bool>,
}

/// One command run inside the target.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    /// Names the step in progress, logs and errors.
    pub name: String,
    /// A shell command line run by the target's `/bin/sh -c`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    /// A script file (relative to the recipe) copied into the target and run there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
    /// Environment variables for the step (part of its cache key).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env: Option<IndexMap<String, String>>,
    /// Names of build-host environment variables passed to the step as secrets: never
    /// written into the recipe, manifest, logs or cache keys; a step with secrets is
    /// never cached, and runs after the steps without. `NAME?` marks a secret the step
    /// can do without.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secrets: Option<Vec<String>>,
}

/// A single path or a list of paths.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl Default for OneOrMany {
    fn default() -> Self {
        OneOrMany::Many(Vec::new())
    }
}

impl OneOrMany {
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

/// A template variable's value: any YAML value (string, number, bool, list, map).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(transparent)]
pub struct VarValue(pub serde_norway::Value);

impl JsonSchema for VarValue {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "VarValue".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({})
    }
}

/// The root file system's source. Exactly one of `tar` or `dir`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RootfsSpec {
    /// A tar archive (pax, as mmdebstrap writes it) of the whole root file system;
    /// ownership, modes, links, device nodes and `security.*` xattrs are kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tar: Option<String>,
    /// A directory holding the root file system (owners are read as they are on disk).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
    /// Debian (or derivative) suite to bootstrap with mmdebstrap: `bookworm`, `trixie`, ...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suite: Option<String>,
    /// Debian architecture: `arm64`, `armhf`, `armel`, `amd64`, ...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
    /// mmdebstrap variant (default `minbase`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// Archive URL (default `http://deb.debian.org/debian`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mirror: Option<String>,
    /// Archive components (default `main`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub components: Option<MergeList<String>>,
    /// Extra apt sources, by name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sources: Option<IndexMap<String, Option<AptSource>>>,
    /// Packages to install.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub packages: Option<MergeList<String>>,
    /// Directories copied in before any package is installed (so maintainer scripts see
    /// them, e.g. /etc/default/raspi-firmware); `*.j2` files are rendered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preseed: Option<MergeList<String>>,
    /// Build the initramfs once, at the end, with only these modules (MODULES=list),
    /// instead of once per package that triggers it: far faster under emulation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initramfs_modules: Option<MergeList<String>>,
}

/// An extra apt source. Its signing key is a file in the repository, or a URL whose
/// fingerprint must match.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AptSource {
    pub uris: String,
    pub suites: OneOrMany,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub components: Option<Vec<String>>,
    /// Key file (relative to the recipe), armored or binary OpenPGP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Key URL, checked against `fingerprint`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// Use the archive's own keyring (for Debian's own suites such as trixie-backports).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub debian_keyring: Option<bool>,
}

/// Partition table kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TableKind {
    Mbr,
    Gpt,
}

/// The disk image.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ImageSpec {
    /// `mbr` (every Raspberry Pi) or `gpt`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table: Option<TableKind>,
    /// Total image size (`8GiB`) or `auto` (end of the last partition, aligned). Default `auto`.
    #[serde(
        default,
        deserialize_with = "super::size::de_size_text",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<super::size::SizeText>")]
    pub size: Option<String>,
    /// Pinned disk identifier: 8 hex digits for MBR (`0x1234abcd`), a GUID for GPT.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_id: Option<String>,
    /// Default partition alignment (default `1MiB`).
    #[serde(
        default,
        deserialize_with = "super::size::de_size_text",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<super::size::SizeText>")]
    pub alignment: Option<String>,
    /// Partitions in disk order, by name. A recipe that extends another changes a
    /// partition by naming it again, or removes it with `name: ~`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partitions: Option<IndexMap<String, Option<PartitionSpec>>>,
    /// Raw files written at fixed offsets outside partitions (boot loaders).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blobs: Option<IndexMap<String, Option<BlobSpec>>>,
    /// A PC's boot loaders, installed from the root file system's own GRUB and shim
    /// packages (the Raspberry Pi's firmware needs none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bootloader: Option<BootloaderSpec>,
}

/// A boot loader the image stage can install.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum LoaderKind {
    /// GRUB for BIOS: boot.img in the protective MBR, core.img in the `bios-boot`
    /// partition (package grub-pc-bin).
    GrubBios,
    /// GRUB for UEFI at the removable-media path `EFI/BOOT/BOOTX64.EFI` of the `esp`
    /// partition (Debian's signed GRUB, package grub-efi-amd64-signed).
    GrubEfi,
    /// Debian's signed shim in front of GRUB, for Secure Boot (package shim-signed).
    Shim,
}

/// `image.bootloader`: which loaders, and the menu they show.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BootloaderSpec {
    /// The loaders: `grub-bios`, `grub-efi`, `shim` (shim needs grub-efi).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub install: Option<Vec<LoaderKind>>,
    /// The menu's title for the system (default: the recipe's description).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Kernel arguments after `root=` and `ro` (e.g. `quiet`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel_args: Option<String>,
    /// Seconds the menu waits (default 3).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u32>,
}

/// File system kinds a partition can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FsKind {
    /// FAT (FAT32, or FAT16/FAT12 where the partition is too small for FAT32).
    Vfat,
    /// ext4, made by `mke2fs -d`.
    Ext4,
    /// A file written into the partition as it is (`source:`).
    Raw,
    /// Left empty (e.g. a BIOS boot partition filled later).
    None,
}

/// One partition.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PartitionSpec {
    /// File system label (default: the partition's name; FAT labels are upper-cased).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Partition type: `fat32-lba`, `fat32`, `fat16`, `linux`, `linux-swap`, `esp`,
    /// `bios-boot`, `root-arm64`, `root-x86-64`, `root-arm`, a raw MBR byte (`0x0c`) or a
    /// GPT type GUID. Default: from the file system.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// `vfat`, `ext4`, `raw` or `none`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filesystem: Option<FsKind>,
    /// A fixed size (`256MiB`) or `auto`: content plus `margin`. Default `auto`.
    #[serde(
        default,
        deserialize_with = "super::size::de_size_text",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<super::size::SizeText>")]
    pub size: Option<String>,
    /// Free space added to an `auto` size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub margin: Option<MarginSpec>,
    /// A fixed start offset (`16MiB`, `32768s`); default: after the previous partition.
    #[serde(
        default,
        deserialize_with = "super::size::de_size_text",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<super::size::SizeText>")]
    pub start: Option<String>,
    /// Alignment of this partition's start (default: the image's).
    #[serde(
        default,
        deserialize_with = "super::size::de_size_text",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<super::size::SizeText>")]
    pub alignment: Option<String>,
    /// Sets the MBR boot flag or the GPT legacy-BIOS-bootable attribute.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bootable: Option<bool>,
    /// Where the partition is mounted in the root file system: it takes that part of the
    /// tree (`/boot/firmware`). The partition mounted at `/` takes the rest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mount: Option<String>,
    /// For `filesystem: raw`, the file written into the partition.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Pinned file system UUID (ext4: a UUID; vfat: a volume ID such as `1234-ABCD`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// Pinned partition UUID (GPT only: MBR PARTUUIDs derive from the disk identifier).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partuuid: Option<String>,
    /// FAT variant for `vfat`: 12, 16 or 32 (default: 32 when the size allows).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fat: Option<u8>,
}

/// Free space on top of an `auto` partition's content.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MarginSpec {
    /// Percentage of the content size (default 10).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub percent: Option<f64>,
    /// At least this much (default `16MiB`).
    #[serde(
        default,
        deserialize_with = "super::size::de_size_text",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<super::size::SizeText>")]
    pub min: Option<String>,
}

/// A raw file written at a fixed place on the disk, outside any partition.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BlobSpec {
    /// The file to write (relative to the recipe).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Or a file the `firmware:` section makes, as `NAME/FILE` (`u-boot/idbloader.img`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub firmware: Option<String>,
    /// Byte offset (`32KiB`, `64s` for sector 64).
    #[serde(
        default,
        deserialize_with = "super::size::de_size_text",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<super::size::SizeText>")]
    pub offset: Option<String>,
    /// Offset in 512-byte sectors (instead of `offset`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sector: Option<u64>,
}

/// Compression of the published image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    Xz,
    Zstd,
    Gz,
    None,
}

/// What a build makes of the root file system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// A flashable disk image (`image:` says how).
    Image,
    /// An OCI image archive for `podman load` / `docker load` (`output.oci:` says how).
    Oci,
}

/// What the build publishes.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    /// `image` (default): a disk image; `oci`: a container image archive of the root
    /// file system (needs `rootfs`, takes no `image`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<OutputFormat>,
    /// `xz` (default, multithreaded), `zstd` (multithreaded), `gz` or `none`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compression: Option<Compression>,
    /// Compression level (xz 0-9, default 6; zstd 1-19, default 10; gz 1-9, default 6;
    /// for `format: oci` the gzip level of the layer, 1-9, default 6).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<u32>,
    /// Keep the uncompressed `.img` next to the compressed one (default true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_raw: Option<bool>,
    /// The container image, for `format: oci`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oci: Option<OciSpec>,
}

/// The container image's name and run-time defaults (`output.format: oci`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OciSpec {
    /// Image name and tag, `NAME:TAG` (default `<recipe name>:latest`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// The command the container runs (default `[/sbin/init]`: systemd boots the
    /// server's services as on the disk image).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cmd: Option<MergeList<String>>,
    /// Ports the container serves: `80`, `"53/udp"` (default none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ports: Option<MergeList<Port>>,
    /// Environment variables of the container's processes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env: Option<IndexMap<String, String>>,
    /// Labels of the image (`org.opencontainers.image.source: ...`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<IndexMap<String, String>>,
}

/// A port: a TCP port number, or `NUMBER/tcp`, `NUMBER/udp`, `NUMBER/sctp`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Port {
    Number(u16),
    Text(String),
}
