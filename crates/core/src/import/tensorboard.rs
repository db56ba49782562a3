//! TensorBoard event files (`events.out.tfevents.*`, written by `torch.utils.tensorboard`,
//! TensorFlow, Megatron, NeMo, torchtitan): TFRecord framing, each record
//!
//! ```text
//! u64 length (little-endian) | u32 masked CRC-32C of those 8 bytes | data | u32 masked CRC-32C of data
//! ```
//!
//! with `data` an `Event` message (tensorflow/core/util/event.proto): `wall_time` = 1
//! (double), `step` = 2 (int64), `summary` = 5, whose `value` = 1 entries have `tag` = 1 and
//! either `simple_value` = 2 (a float: the old form, `add_scalar`'s default) or `tensor` = 8
//! (a `TensorProto` of one element: `dtype` = 1, `tensor_content` = 4, `float_val` = 5,
//! `double_val` = 6, `int_val` = 7, `int64_val` = 10, `half_val` = 13: the form TensorFlow 2
//! and `add_scalar(new_style=True)` write). Both checksums are checked; a final record cut
//! short (a run still writing) is read up to, with a warning.

use super::wire::{packed_floats, Fields, Value};
use super::{masked_crc32c, ImportError, RawLog, RawPoint};
use std::collections::HashMap;
use std::path::Path;

/// Whether a file's name is an event file's.
pub fn is_event_file(name: &str) -> bool {
    name.starts_with("events.out.tfevents")
}

/// Reads the scalars of one event file's bytes into `log` (tags interned in `tags`).
///
/// # Errors
/// [`ImportError`] naming the file and the byte offset of the record whose length or data
/// checksum does not match, or whose data is not an event.
///
/// # Example
/// ```
/// use isoflop_core::import::tensorboard::{read_events, write_events};
/// use isoflop_core::import::RawLog;
/// let bytes = write_events(&[(10, 1.7e9, "train/loss", 3.5), (20, 1.7e9, "train/loss", 3.25)]);
/// let mut log = RawLog::default();
/// read_events("events.out.tfevents.1".as_ref(), &bytes, &mut log, &mut Default::default()).unwrap();
/// assert_eq!(log.keys, vec!["train/loss"]);
/// assert_eq!(log.points.iter().map(|p| (p.step, p.value)).collect::<Vec<_>>(), vec![(10.0, 3.5), (20.0, 3.25)]);
/// // One flipped bit: the record is named by its byte offset.
/// let mut bad = bytes.clone();
/// let last = bad.len() - 6;
/// bad[last] ^= 1;
/// let e = read_events("ev".as_ref(), &bad, &mut RawLog::default(), &mut Default::default()).unwrap_err();
/// assert!(e.at.starts_with("byte "), "{e}");
/// ```
pub fn read_events(
    path: &Path,
    bytes: &[u8],
    log: &mut RawLog,
    tags: &mut HashMap<Vec<u8>, u32>,
) -> Result<(), ImportError> {
    let mut pos = 0usize;
    let mut record = 0usize;
    while pos < bytes.len() {
        let rest = bytes.len() - pos;
        let truncated = |log: &mut RawLog| {
            log.warnings.push(format!(
                "{}: the last record, at byte {pos}, is cut short (a run still writing?): read up to it",
                path.display()
            ));
        };
        if rest < 12 {
            truncated(log);
            break;
        }
        let len_bytes = &bytes[pos..pos + 8];
        let len_crc = u32::from_le_bytes(bytes[pos + 8..pos + 12].try_into().expect("4 bytes"));
        if masked_crc32c(len_bytes) != len_crc {
            return Err(ImportError::new(
                path,
                format!("byte {pos} (record {record})"),
                "the record's length fails its checksum: the file is damaged",
            ));
        }
        let len = u64::from_le_bytes(len_bytes.try_into().expect("8 bytes"));
        let Some(end) = usize::try_from(len)
            .ok()
            .and_then(|l| pos.checked_add(12)?.checked_add(l)?.checked_add(4))
            .filter(|&e| e <= bytes.len())
        else {
            truncated(log);
            break;
        };
        let data = &bytes[pos + 12..end - 4];
        let data_crc = u32::from_le_bytes(bytes[end - 4..end].try_into().expect("4 bytes"));
        if masked_crc32c(data) != data_crc {
            return Err(ImportError::new(
                path,
                format!("byte {pos} (record {record})"),
                "the record's data fails its checksum: the file is damaged",
            ));
        }
        read_event(data, log, tags).map_err(|(at, what)| {
            ImportError::new(
                path,
                format!("byte {} (record {record})", pos + 12 + at),
                format!("not a TensorBoard event: {what}"),
            )
        })?;
        pos = end;
        record += 1;
    }
    Ok(())
}

fn read_event(
    data: &[u8],
    log: &mut RawLog,
    tags: &mut HashMap<Vec<u8>, u32>,
) -> Result<(), (usize, &'static str)> {
    let (mut wall, mut step, mut summary) = (f64::NAN, 0i64, None);
    let mut f = Fields::new(data);
    for (field, v) in f.by_ref() {
        match (field, v) {
            (1, Value::Fixed64(b)) => wall = f64::from_bits(b),
            (2, Value::Varint(s)) => step = s as i64,
            (5, Value::Bytes(s)) => summary = Some(s),
            _ => {}
        }
    }
    if let Some(e) = f.error() {
        return Err(e);
    }
    let Some(summary) = summary else {
        return Ok(());
    };
    let mut values = Fields::new(summary);
    for (field, v) in values.by_ref() {
        let (1, Value::Bytes(value)) = (field, v) else {
            continue;
        };
        let (mut tag, mut scalar) = (None, None);
        let mut vf = Fields::new(value);
        for (field, v) in vf.by_ref() {
            match (field, v) {
                (1, Value::Bytes(t)) => tag = Some(t),
                (2, Value::Fixed32(b)) => scalar = Some(f64::from(f32::from_bits(b))),
                (8, Value::Bytes(t)) => scalar = tensor_scalar(t),
                _ => {}
            }
        }
        if let Some(e) = vf.error() {
            return Err(e);
        }
        if let (Some(tag), Some(value)) = (tag, scalar) {
            let key = match tags.get(tag) {
                Some(&k) => k,
                None => {
                    let k = log.key_id(&String::from_utf8_lossy(tag));
                    tags.insert(tag.to_vec(), k);
                    k
                }
            };
            log.points.push(RawPoint {
                step: step as f64,
                key,
                value,
                wall,
            });
        }
    }
    match values.error() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// The value of a one-element numeric tensor (`None` for anything else: text, images,
/// histograms, several elements).
fn tensor_scalar(t: &[u8]) -> Option<f64> {
    const FLOAT: u64 = 1;
    const DOUBLE: u64 = 2;
    const INT32: u64 = 3;
    const INT64: u64 = 9;
    const BFLOAT16: u64 = 14;
    const HALF: u64 = 19;
    let mut dtype = 0u64;
    let mut values: Vec<f64> = Vec::new();
    let mut content: Option<&[u8]> = None;
    for (field, v) in Fields::new(t) {
        match (field, v) {
            (1, Value::Varint(d)) => dtype = d,
            (4, Value::Bytes(b)) => content = Some(b),
            (5, Value::Bytes(b)) => values.extend(packed_floats(b, 4)),
            (5, Value::Fixed32(b)) => values.push(f64::from(f32::from_bits(b))),
            (6, Value::Bytes(b)) => values.extend(packed_floats(b, 8)),
            (6, Value::Fixed64(b)) => values.push(f64::from_bits(b)),
            (7 | 10, Value::Varint(x)) => values.push(x as i64 as f64),
            (7 | 10, Value::Bytes(b)) => {
                values.extend(Fields::packed_varints(b).map(|x| x as i64 as f64))
            }
            (13, Value::Varint(x)) => values.push(half(x as u16)),
            (13, Value::Bytes(b)) => {
                values.extend(Fields::packed_varints(b).map(|x| half(x as u16)))
            }
            _ => {}
        }
    }
    if let Some(c) = content {
        let v = match (dtype, c.len()) {
            (FLOAT, 4) => f64::from(f32::from_le_bytes(c.try_into().ok()?)),
            (DOUBLE, 8) => f64::from_le_bytes(c.try_into().ok()?),
            (INT32, 4) => f64::from(i32::from_le_bytes(c.try_into().ok()?)),
            (INT64, 8) => i64::from_le_bytes(c.try_into().ok()?) as f64,
            (HALF, 2) => half(u16::from_le_bytes(c.try_into().ok()?)),
            (BFLOAT16, 2) => f64::from(f32::from_bits(
                u32::from(u16::from_le_bytes(c.try_into().ok()?)) << 16,
            )),
            _ => return None,
        };
        return Some(v);
    }
    if !matches!(dtype, FLOAT | DOUBLE | INT32 | INT64 | HALF | BFLOAT16) {
        return None;
    }
    match values.as_slice() {
        [v] => Some(*v),
        _ => None,
    }
}

/// An IEEE half-precision number's value.
fn half(bits: u16) -> f64 {
    let sign = if bits >> 15 == 1 { -1.0 } else { 1.0 };
    let exp = i32::from((bits >> 10) & 0x1f);
    let frac = f64::from(bits & 0x3ff);
    sign * match exp {
        0 => frac * 2f64.powi(-24),
        31 if frac == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        e => (1.0 + frac / 1024.0) * 2f64.powi(e - 15),
    }
}

/// Writes scalars as an event file's bytes (a `file_version` event first, as TensorBoard's
/// writers do, then one `simple_value` event per scalar): for tests and benchmarks of the
/// reader, and for isoflop's own runs logged to TensorBoard.
pub fn write_events(scalars: &[(i64, f64, &str, f32)]) -> Vec<u8> {
    fn varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    fn bytes_field(out: &mut Vec<u8>, field: u64, b: &[u8]) {
        varint(out, field << 3 | 2);
        varint(out, b.len() as u64);
        out.extend_from_slice(b);
    }
    fn record(out: &mut Vec<u8>, data: &[u8]) {
        let len = (data.len() as u64).to_le_bytes();
        out.extend_from_slice(&len);
        out.extend_from_slice(&masked_crc32c(&len).to_le_bytes());
        out.extend_from_slice(data);
        out.extend_from_slice(&masked_crc32c(data).to_le_bytes());
    }
    let mut out = Vec::new();
    let mut first = Vec::new();
    first.push(1 << 3 | 1);
    first.extend_from_slice(&0f64.to_le_bytes());
    bytes_field(&mut first, 3, b"brain.Event:2");
    record(&mut out, &first);
    let mut ev = Vec::new();
    let (mut value, mut summary) = (Vec::new(), Vec::new());
    for &(step, wall, tag, v) in scalars {
        value.clear();
        bytes_field(&mut value, 1, tag.as_bytes());
        value.push(2 << 3 | 5);
        value.extend_from_slice(&v.to_le_bytes());
        summary.clear();
        bytes_field(&mut summary, 1, &value);
        ev.clear();
        ev.push(1 << 3 | 1);
        ev.extend_from_slice(&wall.to_le_bytes());
        varint(&mut ev, 2 << 3);
        varint(&mut ev, step as u64);
        bytes_field(&mut ev, 5, &summary);
        record(&mut out, &ev);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(bytes: &[u8]) -> Result<RawLog, ImportError> {
        let mut log = RawLog::default();
        read_events(
            Path::new("events.out.tfevents.1"),
            bytes,
            &mut log,
            &mut HashMap::new(),
        )?;
        Ok(log)
    }

    #[test]
    fn reads_back_what_it_wrote_and_names_damage_by_offset() {
        let bytes = write_events(&[
            (1, 10.0, "loss", 3.5),
            (2, 11.0, "loss", 3.25),
            (2, 11.0, "lr", 0.5),
        ]);
        let log = read(&bytes).unwrap();
        assert_eq!(log.keys, vec!["loss", "lr"]);
        let got: Vec<(f64, u32, f64)> = log
            .points
            .iter()
            .map(|p| (p.step, p.key, p.value))
            .collect();
        assert_eq!(got, vec![(1.0, 0, 3.5), (2.0, 0, 3.25), (2.0, 1, 0.5)]);
        assert!(log.warnings.is_empty());
        // A flipped bit in the second record's data.
        let second = 12 + (bytes[0] as usize) + 4;
        let mut bad = bytes.clone();
        bad[second + 14] ^= 1;
        let e = read(&bad).unwrap_err();
        assert_eq!(e.at, format!("byte {second} (record 1)"));
        assert!(e.problem.contains("data fails its checksum"), "{e}");
        // A flipped bit in a length.
        let mut bad = bytes.clone();
        bad[second + 1] ^= 1;
        assert!(read(&bad).unwrap_err().problem.contains("length fails"));
        // Cut inside the last record: the rest is read, with a warning.
        let log = read(&bytes[..bytes.len() - 3]).unwrap();
        assert_eq!(log.points.len(), 2);
        assert!(log.warnings[0].contains("cut short"), "{:?}", log.warnings);
    }

    #[test]
    fn half_precision_values() {
        assert_eq!(half(0x3c00), 1.0);
        assert_eq!(half(0xc000), -2.0);
        assert_eq!(half(0x3555), 0.333251953125);
    }
}
