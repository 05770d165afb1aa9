//! The firmware stage: boot loaders built on the build host from Debian's own source
//! packages (never under emulation), for boards no Debian binary package serves — the
//! Radxa Rock 4C+ and 4SE's U-Boot. Its sources come through `fetch::debian_archive`,
//! trusted only by the archive's signature.
//!
//! - `uboot`: unpack the source package, configure the board's defconfig, cross-compile
//!   with Debian's gcc-aarch64-linux-gnu and the rk3399 bl31 from arm-trusted-firmware.

pub mod sources;
pub mod uboot;
