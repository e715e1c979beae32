//! The ustar headers PSDB writes: one fixed shape, so a header can be checked by regenerating it.
//!
//! Every member is a POSIX ustar regular file (typeflag `0`, magic `ustar\0`, version `00`),
//! mode 0644, uid/gid 0, mtime 0, empty user/group names, its whole name in the 100-byte name
//! field (names are at most [`MAX_NAME`] bytes, so the prefix field is never used). Given a name
//! and a size the 512 header bytes are fully determined, which is how mount, `get` and `fsck`
//! recognise a header: they rebuild it and compare all 512 bytes.

use crate::device::SECTOR_SIZE;

/// Longest member name (`<namespace>/<path>`), leaving the name field NUL-terminated.
pub const MAX_NAME: usize = 99;

/// Bytes a member of `size` data bytes occupies: header plus data padded to a block.
pub fn member_len(size: u64) -> u64 {
    SECTOR_SIZE as u64 + padded(size)
}

/// `size` rounded up to whole blocks.
pub fn padded(size: u64) -> u64 {
    size.div_ceil(SECTOR_SIZE as u64) * SECTOR_SIZE as u64
}

fn octal(field: &mut [u8], value: u64) {
    // `field.len() - 1` digits, zero padded, then NUL.
    let digits = field.len() - 1;
    let mut v = value;
    for i in (0..digits).rev() {
        field[i] = b'0' + (v & 7) as u8;
        v >>= 3;
    }
    field[digits] = 0;
}

/// The header of a member called `name` with `size` data bytes. The caller has checked that
/// `name.len() <= MAX_NAME` and that `size` fits 11 octal digits (objects are below 4 GiB).
pub fn header(name: &[u8], size: u64) -> [u8; SECTOR_SIZE] {
    let mut h = [0u8; SECTOR_SIZE];
    let n = name.len().min(MAX_NAME);
    h[..n].copy_from_slice(&name[..n]);
    octal(&mut h[100..108], 0o644);
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[124..136], size);
    octal(&mut h[136..148], 0);
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    octal(&mut h[329..337], 0);
    octal(&mut h[337..345], 0);
    // The checksum is computed with its own field as spaces: six octal digits, NUL, space.
    h[148..156].copy_from_slice(b"        ");
    let sum: u64 = h.iter().map(|&b| u64::from(b)).sum();
    octal(&mut h[148..155], sum);
    h[155] = b' ';
    h
}

/// If `block` is a header of the shape [`header`] writes, its name and size.
pub fn parse(block: &[u8]) -> Option<(&[u8], u64)> {
    if block.len() != SECTOR_SIZE {
        return None;
    }
    let name_len = block[..100].iter().position(|&b| b == 0)?;
    let mut size = 0u64;
    for &d in &block[124..135] {
        if !(b'0'..=b'7').contains(&d) {
            return None;
        }
        size = (size << 3) | u64::from(d - b'0');
    }
    let name = &block[..name_len];
    if name.is_empty() || header(name, size)[..] != block[..] {
        return None;
    }
    Some((name, size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_checksum() {
        let h = header(b"tenant/tile/0/000", 8192);
        assert_eq!(parse(&h), Some((&b"tenant/tile/0/000"[..], 8192)));
        // The checksum field holds the sum of all bytes with the field read as spaces.
        let mut c = h;
        c[148..156].copy_from_slice(b"        ");
        let sum: u32 = c.iter().map(|&b| u32::from(b)).sum();
        let field = core::str::from_utf8(&h[148..154]).unwrap();
        assert_eq!(u32::from_str_radix(field, 8).unwrap(), sum);
        let mut bad = h;
        bad[300] ^= 1;
        assert_eq!(parse(&bad), None);
        assert_eq!(member_len(0), 512);
        assert_eq!(member_len(1), 1024);
        assert_eq!(member_len(512), 1024);
    }
}
