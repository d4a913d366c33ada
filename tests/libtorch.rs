//! Proves that libtorch is linked and works on this machine: autograd, and a safetensors
//! round trip through tch.

use tch::{Device, Kind, Tensor};

#[test]
fn gradient_of_a_small_computation() {
    // y = sum(w · x²) ⇒ dy/dx = 2·w·x
    let x = Tensor::from_slice(&[1.0f32, -2.0, 3.0]).set_requires_grad(true);
    let w = Tensor::from_slice(&[0.5f32, 1.0, 2.0]);
    let y = (&w * &x * &x).sum(Kind::Float);
    y.backward();
    let grad: Vec<f32> = Vec::try_from(x.grad()).unwrap();
    assert_eq!(grad, vec![1.0, -4.0, 12.0]);
}

#[test]
fn matmul_matches_a_hand_computation() {
    let a = Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0]).view([2, 2]);
    let b = Tensor::from_slice(&[5.0f32, 6.0, 7.0, 8.0]).view([2, 2]);
    let c: Vec<f32> = Vec::try_from(a.matmul(&b).flatten(0, 1)).unwrap();
    assert_eq!(c, vec![19.0, 22.0, 43.0, 50.0]);
}

#[test]
fn safetensors_round_trip_through_tch() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("weights.safetensors");
    let w = Tensor::randn([3, 4], (Kind::Float, Device::Cpu));
    let ids = Tensor::from_slice(&[7i64, 1, 1023]);
    let bytes = Tensor::arange(6, (Kind::Uint8, Device::Cpu)).view([2, 3]);
    Tensor::write_safetensors(&[("w", &w), ("ids", &ids), ("bytes", &bytes)], &path).unwrap();

    let loaded = Tensor::read_safetensors(&path).unwrap();
    let get = |name: &str| {
        loaded
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t.shallow_clone())
            .unwrap()
    };
    assert_eq!(loaded.len(), 3);
    assert!(get("w").equal(&w));
    assert!(get("ids").equal(&ids));
    assert_eq!(get("bytes").kind(), Kind::Uint8);
    assert!(get("bytes").equal(&bytes));

    // The file is plain safetensors: the Rust `safetensors` crate reads what tch wrote.
    let raw = std::fs::read(&path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&raw).unwrap();
    assert_eq!(st.tensor("w").unwrap().shape(), &[3, 4]);
}
