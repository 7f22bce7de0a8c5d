//! A fixed-length bit vector: a puller's answer to an offer, one bit per
//! offered block, set for the blocks it wants.
//!
//! Bit `i` is bit `i % 8` (least significant first) of byte `i / 8`, as in
//! Swarm's bitvector. The wire form is the length in bits and exactly
//! `ceil(len / 8)` bytes, with no bit set past the length; anything else is
//! refused with an error, never a panic.

use bincode::de::{Decode, Decoder};
use bincode::enc::{Encode, Encoder};
use bincode::error::{DecodeError, EncodeError};

/// What a [`BitVector`] refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BitVectorError {
    /// The bytes do not have the length `len` bits need.
    #[error("{bytes} bytes for {len} bits (want {})", len.div_ceil(8))]
    LengthMismatch {
        /// The length in bits.
        len: usize,
        /// The number of bytes given.
        bytes: usize,
    },
    /// A bit is set past the length.
    #[error("a bit is set past the length {len}")]
    BitPastEnd {
        /// The length in bits.
        len: usize,
    },
    /// An index at or past the length.
    #[error("bit {index} of a {len}-bit vector")]
    OutOfRange {
        /// The index asked for.
        index: usize,
        /// The length in bits.
        len: usize,
    },
}

/// A fixed-length vector of bits, all clear at first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BitVector {
    len: usize,
    bytes: Vec<u8>,
}

impl BitVector {
    /// `len` clear bits.
    pub fn new(len: usize) -> Self {
        BitVector {
            len,
            bytes: vec![0; len.div_ceil(8)],
        }
    }

    /// The vector of `len` bits held in `bytes` (its wire form).
    ///
    /// # Errors
    ///
    /// [`BitVectorError::LengthMismatch`] unless `bytes` has `ceil(len / 8)`
    /// bytes; [`BitVectorError::BitPastEnd`] if a bit past `len` is set.
    pub fn from_bytes(len: usize, bytes: Vec<u8>) -> Result<Self, BitVectorError> {
        if bytes.len() != len.div_ceil(8) {
            return Err(BitVectorError::LengthMismatch {
                len,
                bytes: bytes.len(),
            });
        }
        let tail_bits = len % 8;
        if let Some(&last) = bytes.last()
            && tail_bits != 0
            && last >> tail_bits != 0
        {
            return Err(BitVectorError::BitPastEnd { len });
        }
        Ok(BitVector { len, bytes })
    }

    /// Sets bit `i`.
    ///
    /// # Errors
    ///
    /// [`BitVectorError::OutOfRange`] if `i >= len`.
    pub fn set(&mut self, i: usize) -> Result<(), BitVectorError> {
        if i >= self.len {
            return Err(BitVectorError::OutOfRange {
                index: i,
                len: self.len,
            });
        }
        self.bytes[i / 8] |= 1 << (i % 8);
        Ok(())
    }

    /// Whether bit `i` is set (false past the length).
    pub fn get(&self, i: usize) -> bool {
        i < self.len && self.bytes[i / 8] & (1 << (i % 8)) != 0
    }

    /// The length in bits.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the length is 0.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The indices of the set bits, in increasing order.
    pub fn iter_ones(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.len).filter(|&i| self.get(i))
    }

    /// How many bits are set.
    pub fn count_ones(&self) -> usize {
        self.bytes.iter().map(|b| b.count_ones() as usize).sum()
    }

    /// The bytes of the wire form (`ceil(len / 8)` of them).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// Encoded as the length in bits (`u64`), then the bytes.
impl Encode for BitVector {
    fn encode<E: Encoder>(&self, encoder: &mut E) -> Result<(), EncodeError> {
        (self.len as u64).encode(encoder)?;
        self.bytes.encode(encoder)
    }
}

impl<Context> Decode<Context> for BitVector {
    fn decode<D: Decoder<Context = Context>>(decoder: &mut D) -> Result<Self, DecodeError> {
        let len = u64::decode(decoder)?;
        let len = usize::try_from(len).map_err(|_| DecodeError::OutsideUsizeRange(len))?;
        let bytes = Vec::<u8>::decode(decoder)?;
        BitVector::from_bytes(len, bytes).map_err(|e| DecodeError::OtherString(e.to_string()))
    }
}

bincode::impl_borrow_decode!(BitVector);

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn set_get_and_iter_ones() {
        let mut v = BitVector::new(10);
        assert_eq!(v.len(), 10);
        assert_eq!(v.as_bytes().len(), 2);
        v.set(0).unwrap();
        v.set(3).unwrap();
        v.set(9).unwrap();
        assert!(v.get(0) && v.get(3) && v.get(9));
        assert!(!v.get(1) && !v.get(10) && !v.get(usize::MAX));
        assert_eq!(v.iter_ones().collect::<Vec<_>>(), [0, 3, 9]);
        assert_eq!(v.count_ones(), 3);
        assert_eq!(v.as_bytes(), [0b0000_1001, 0b0000_0010]);
        assert_eq!(
            v.set(10),
            Err(BitVectorError::OutOfRange { index: 10, len: 10 })
        );
        assert!(BitVector::new(0).is_empty());
        assert_eq!(BitVector::new(0).as_bytes(), [0u8; 0]);
    }

    #[test]
    fn from_bytes_refuses_a_wrong_length_or_bits_past_the_end() {
        assert_eq!(
            BitVector::from_bytes(10, vec![0]),
            Err(BitVectorError::LengthMismatch { len: 10, bytes: 1 })
        );
        assert_eq!(
            BitVector::from_bytes(8, vec![0, 0]),
            Err(BitVectorError::LengthMismatch { len: 8, bytes: 2 })
        );
        assert_eq!(
            BitVector::from_bytes(10, vec![0, 0b100]),
            Err(BitVectorError::BitPastEnd { len: 10 })
        );
        assert!(BitVector::from_bytes(10, vec![0xff, 0b11]).is_ok());
        assert!(BitVector::from_bytes(16, vec![0xff, 0xff]).is_ok());
        assert!(BitVector::from_bytes(0, vec![]).is_ok());
    }

    proptest! {
        #[test]
        fn round_trips_through_its_wire_form(
            len in 0usize..200,
            ones in prop::collection::btree_set(0usize..200, 0..50),
        ) {
            let mut v = BitVector::new(len);
            let ones: Vec<_> = ones.into_iter().filter(|&i| i < len).collect();
            for &i in &ones {
                v.set(i).unwrap();
            }
            prop_assert_eq!(v.iter_ones().collect::<Vec<_>>(), ones.clone());
            prop_assert_eq!(v.count_ones(), ones.len());
            let back = BitVector::from_bytes(v.len(), v.as_bytes().to_vec()).unwrap();
            prop_assert_eq!(&back, &v);
            let config = bincode::config::standard();
            let encoded = bincode::encode_to_vec(&v, config).unwrap();
            let (decoded, read): (BitVector, _) =
                bincode::decode_from_slice(&encoded, config).unwrap();
            prop_assert_eq!(read, encoded.len());
            prop_assert_eq!(decoded, v);
        }

        #[test]
        fn from_bytes_never_panics(len in 0usize..100, bytes in prop::collection::vec(any::<u8>(), 0..16)) {
            if let Ok(v) = BitVector::from_bytes(len, bytes.clone()) {
                prop_assert_eq!(v.as_bytes(), &bytes[..]);
                prop_assert!(v.iter_ones().all(|i| i < len));
            }
        }
    }
}
