//! A rank's share of a step's batch in data-parallel training (`crate::train::dist`).

use tch::{Device, Kind, Tensor};

/// Which rows of a step's global batch a rank trains on: rows `offset..offset + rows` of
/// `total`. Randomness drawn per clip (masks, mirroring) is drawn for all `total` rows on every
/// rank from the same seed and cut to the rank's rows, so that N ranks at batch B/N see what one
/// rank at batch B sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rows {
    pub offset: i64,
    pub total: i64,
}

impl Rows {
    /// All of a batch of `b` rows (one process).
    pub fn whole(b: i64) -> Rows {
        Rows {
            offset: 0,
            total: b,
        }
    }

    /// U(0, 1) values of shape `[b, rest…]` for this rank's `b` rows.
    pub fn rand(&self, shape: &[i64], device: Device) -> Tensor {
        let b = shape[0];
        let mut all = shape.to_vec();
        all[0] = self.total;
        let values = Tensor::rand(all.as_slice(), (Kind::Float, device));
        if b == self.total {
            values
        } else {
            values.narrow(0, self.offset, b)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_cut_the_global_draw() {
        tch::manual_seed(7);
        let whole = Rows::whole(4).rand(&[4, 3], Device::Cpu);
        tch::manual_seed(7);
        let second = Rows {
            offset: 2,
            total: 4,
        }
        .rand(&[2, 3], Device::Cpu);
        assert!(whole.narrow(0, 2, 2).equal(&second));
    }
}
