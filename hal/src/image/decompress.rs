//! Decompression of image streams as they arrive: gzip, bzip2, xz, zstd or none, as blocking readers.

use super::error::{ImageError, ImageErrorKind};
use std::io::{BufRead, BufReader, Read};
use std::str::FromStr;

/// How an image stream is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Compression {
    /// Not compressed.
    None,
    /// gzip (`tgz`, `ddgz`), multi-member.
    Gzip,
    /// bzip2 (`tbz2`, `ddbz2`), multi-stream.
    Bzip2,
    /// xz (`txz`, `ddxz`), multi-stream.
    Xz,
    /// zstd (`tzst`, `ddzst`), multi-frame.
    Zstd,
}

impl FromStr for Compression {
    type Err = ImageError;
    /// Accepts Kadeploy's names and common suffixes (`gzip`/`gz`, `bzip2`/`bz2`, `xz`, `zstd`/`zst`, `none`).
    fn from_str(s: &str) -> Result<Self, ImageError> {
        match s.to_ascii_lowercase().as_str() {
            "" | "none" | "raw" => Ok(Compression::None),
            "gzip" | "gz" => Ok(Compression::Gzip),
            "bzip2" | "bz2" => Ok(Compression::Bzip2),
            "xz" | "lzma" => Ok(Compression::Xz),
            "zstd" | "zst" => Ok(Compression::Zstd),
            other => Err(ImageError::new(
                ImageErrorKind::Unsupported,
                format!("unknown compression {other:?}"),
            )),
        }
    }
}

impl Compression {
    /// The canonical name.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Bzip2 => "bzip2",
            Compression::Xz => "xz",
            Compression::Zstd => "zstd",
        }
    }

    /// Wraps `input` in a streaming decoder (memory bounded by the format's window, not the image).
    ///
    /// The result is buffered: a consumer takes the decoded bytes with `fill_buf` without copying
    /// them again, and an uncompressed `input` is passed through as it is.
    pub fn decoder<'a, R: BufRead + 'a>(
        self,
        input: R,
    ) -> Result<Box<dyn BufRead + 'a>, ImageError> {
        fn buffered<'a>(r: impl Read + 'a) -> Box<dyn BufRead + 'a> {
            Box::new(BufReader::with_capacity(DECODED_BUFFER, r))
        }
        Ok(match self {
            Compression::None => Box::new(input),
            Compression::Gzip => buffered(flate2::bufread::MultiGzDecoder::new(input)),
            Compression::Bzip2 => buffered(bzip2::bufread::MultiBzDecoder::new(input)),
            Compression::Xz => buffered(liblzma::bufread::XzDecoder::new_multi_decoder(input)),
            Compression::Zstd => buffered(
                zstd::stream::read::Decoder::with_buffer(input)
                    .map_err(|e| ImageError::io(ImageErrorKind::Decompress, "starting zstd", &e))?,
            ),
        })
    }
}

/// Decoded bytes buffered between a decompressor and the writer.
const DECODED_BUFFER: usize = 1 << 20;

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Write;

    /// Compresses `data` with `c` (test helper, also used by the writer tests).
    pub(crate) fn compress(c: Compression, data: &[u8]) -> Vec<u8> {
        match c {
            Compression::None => data.to_vec(),
            Compression::Gzip => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            Compression::Bzip2 => {
                let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            Compression::Xz => {
                let mut e = liblzma::write::XzEncoder::new(Vec::new(), 1);
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            Compression::Zstd => zstd::stream::encode_all(data, 1).unwrap(),
        }
    }

    #[test]
    fn every_format_round_trips() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 97) as u8).collect();
        for c in [
            Compression::None,
            Compression::Gzip,
            Compression::Bzip2,
            Compression::Xz,
            Compression::Zstd,
        ] {
            let packed = compress(c, &data);
            let mut out = Vec::new();
            c.decoder(&packed[..])
                .unwrap()
                .read_to_end(&mut out)
                .unwrap();
            assert_eq!(out, data, "{c:?}");
            assert_eq!(c.name().parse::<Compression>().unwrap(), c);
        }
        assert_eq!("gz".parse::<Compression>().unwrap(), Compression::Gzip);
        assert_eq!(
            "lz4".parse::<Compression>().unwrap_err().kind,
            ImageErrorKind::Unsupported
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for c in [
            Compression::Gzip,
            Compression::Bzip2,
            Compression::Xz,
            Compression::Zstd,
        ] {
            let mut out = Vec::new();
            let r = c
                .decoder(&b"definitely not compressed data"[..])
                .and_then(|mut d| {
                    d.read_to_end(&mut out)
                        .map_err(|e| ImageError::io(ImageErrorKind::Decompress, "x", &e))
                });
            assert!(r.is_err(), "{c:?}");
        }
    }
}
