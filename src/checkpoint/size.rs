//! Checked u64 arithmetic for the sizes a header implies.

use std::ops::{Add, Mul};

use crate::error::{Error, Result};

/// A size a header implies, with every step checked: reads as the
/// arithmetic it does (`Size::of(n_layers) * dim + Size::of(n)`); `get()`
/// gives the number, or the error for a header whose dimensions overflow.
#[derive(Debug, Clone, Copy)]
pub(super) struct Size(Option<u64>);

impl Size {
    pub(super) fn of(n: impl TryInto<u64>) -> Size {
        Size(n.try_into().ok())
    }

    pub(super) fn get(self) -> Result<u64> {
        self.0.ok_or_else(|| Error::Checkpoint("the header's dimensions overflow when multiplied out".into()))
    }
}

impl Mul<usize> for Size {
    type Output = Size;
    fn mul(self, factor: usize) -> Size {
        Size(self.0.and_then(|a| a.checked_mul(factor as u64)))
    }
}

impl Add for Size {
    type Output = Size;
    fn add(self, other: Size) -> Size {
        Size(self.0.zip(other.0).and_then(|(a, b)| a.checked_add(b)))
    }
}

impl std::iter::Sum for Size {
    fn sum<I: Iterator<Item = Size>>(sizes: I) -> Size {
        sizes.fold(Size::of(0u64), Add::add)
    }
}
