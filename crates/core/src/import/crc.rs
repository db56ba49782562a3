//! The two checksums the imported formats carry: CRC-32C (Castagnoli), masked as TFRecord
//! masks it, for TensorBoard event files; CRC-32 (IEEE 802.3, zlib's) for W&B's datastore.
//! CRC-32C uses the SSE 4.2 instruction where the CPU has it (importing is bound by it),
//! else a table.

const fn table(poly: u32) -> [u32; 256] {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ poly } else { c >> 1 };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
}

static CASTAGNOLI: [u32; 256] = table(0x82f6_3b78);
static IEEE: [u32; 256] = table(0xedb8_8320);

fn by_table(t: &[u32; 256], crc: u32, bytes: &[u8]) -> u32 {
    let mut c = !crc;
    for &b in bytes {
        c = t[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

/// CRC-32C of `bytes`.
pub fn crc32c(bytes: &[u8]) -> u32 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("sse4.2") {
            // SAFETY: the CPU has SSE 4.2, checked just above.
            return unsafe { crc32c_sse42(bytes) };
        }
    }
    by_table(&CASTAGNOLI, 0, bytes)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse4.2")]
unsafe fn crc32c_sse42(bytes: &[u8]) -> u32 {
    use std::arch::x86_64::{_mm_crc32_u64, _mm_crc32_u8};
    let mut c = !0u64;
    let mut chunks = bytes.chunks_exact(8);
    for ch in chunks.by_ref() {
        c = _mm_crc32_u64(c, u64::from_le_bytes(ch.try_into().expect("8 bytes")));
    }
    let mut c = c as u32;
    for &b in chunks.remainder() {
        c = _mm_crc32_u8(c, b);
    }
    !c
}

/// TFRecord's masked CRC-32C: the checksum rotated right by 15 bits plus a constant, so a
/// checksum of bytes that hold checksums is not degenerate.
pub fn masked_crc32c(bytes: &[u8]) -> u32 {
    let c = crc32c(bytes);
    (c.rotate_right(15)).wrapping_add(0xa282_ead8)
}

/// CRC-32 (IEEE) of `bytes`, continuing from `crc` (0 to start), as zlib's `crc32(bytes, crc)`.
pub fn crc32(crc: u32, bytes: &[u8]) -> u32 {
    by_table(&IEEE, crc, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_values_of_both_checksums() {
        // The standard check value of each: the CRC of the ASCII digits 1 to 9.
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
        assert_eq!(by_table(&CASTAGNOLI, 0, b"123456789"), 0xe306_9283);
        assert_eq!(crc32(0, b"123456789"), 0xcbf4_3926);
        // Continuing a CRC is the CRC of the concatenation.
        assert_eq!(crc32(crc32(0, b"1234"), b"56789"), 0xcbf4_3926);
        // The hardware path and the table agree on every length around a word.
        let data: Vec<u8> = (0..40u8).map(|i| i.wrapping_mul(37)).collect();
        for n in 0..data.len() {
            assert_eq!(crc32c(&data[..n]), by_table(&CASTAGNOLI, 0, &data[..n]));
        }
    }
}
