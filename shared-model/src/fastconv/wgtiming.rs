use super::*;
#[test]
#[ignore]
fn time_trunk() {
    let [images, c, m, h, w]: [usize; 5] = std::env::var("WG_SHAPE")
        .ok()
        .map(|v| {
            let p: Vec<usize> = v.split(',').map(|x| x.parse().unwrap()).collect();
            [p[0], p[1], p[2], p[3], p[4]]
        })
        .unwrap_or([64, 64, 64, 16, 16]);
    let g = Geom {
        c,
        h,
        w,
        kh: 3,
        kw: 3,
        sh: 1,
        sw: 1,
        ph: 1,
        pw: 1,
        oh: h,
        ow: w,
    };
    let x = vec![0.5f32; images * g.img()];
    let wt = vec![0.1f32; m * g.k()];
    let dy = vec![0.3f32; images * m * g.p()];
    fn best(f: &mut dyn FnMut()) -> f64 {
        (0..15)
            .map(|_| {
                let t = std::time::Instant::now();
                f();
                t.elapsed().as_secs_f64() * 1e3
            })
            .fold(f64::MAX, f64::min)
    }
    let f = best(&mut || {
        std::hint::black_box(winograd::forward(&g, images, &x, &wt, m, None));
    });
    let bi = best(&mut || {
        std::hint::black_box(winograd::backward_input(&g, images, &wt, m, &dy));
    });
    let bw = best(&mut || {
        std::hint::black_box(winograd::backward_weight(&g, images, &x, &dy, m));
    });
    let both = best(&mut || {
        std::hint::black_box(winograd::backward(&g, images, Some(&x), Some(&wt), m, &dy));
    });
    eprintln!("both {both:.2}");
    let f2 = best(&mut || {
        std::hint::black_box(forward(&g, images, &x, &wt, m, None));
    });
    let bi2 = best(&mut || {
        std::hint::black_box(backward_input(&g, images, &wt, m, &dy));
    });
    let bw2 = best(&mut || {
        std::hint::black_box(backward_weight(&g, images, &x, &dy, m));
    });
    eprintln!(
        "winograd fwd {f:.2} ms, dx {bi:.2}, dw {bw:.2} | im2col fwd {f2:.2}, dx {bi2:.2}, dw {bw2:.2}"
    );
}
#[test]
#[ignore]
fn loop_all() {
    let (images, c, m, h, w) = (64, 32, 64, 32, 32);
    let g = Geom {
        c,
        h,
        w,
        kh: 3,
        kw: 3,
        sh: 1,
        sw: 1,
        ph: 1,
        pw: 1,
        oh: h,
        ow: w,
    };
    let x = vec![0.5f32; images * g.img()];
    let wt = vec![0.1f32; m * g.k()];
    let dy = vec![0.3f32; images * m * g.p()];
    for _ in 0..40 {
        std::hint::black_box(winograd::forward(&g, images, &x, &wt, m, None));
        std::hint::black_box(winograd::backward_input(&g, images, &wt, m, &dy));
        std::hint::black_box(winograd::backward_weight(&g, images, &x, &dy, m));
    }
}
#[test]
#[ignore]
fn time_stem() {
    let (images, c, m) = (64, 3, 32);
    let g = Geom {
        c,
        h: 64,
        w: 64,
        kh: 4,
        kw: 4,
        sh: 2,
        sw: 2,
        ph: 1,
        pw: 1,
        oh: 32,
        ow: 32,
    };
    let x = vec![0.5f32; images * g.img()];
    let wt = vec![0.1f32; m * g.k()];
    let dy = vec![0.3f32; images * m * g.p()];
    fn best(f: &mut dyn FnMut()) -> f64 {
        (0..15)
            .map(|_| {
                let t = std::time::Instant::now();
                f();
                t.elapsed().as_secs_f64() * 1e3
            })
            .fold(f64::MAX, f64::min)
    }
    let f2 = best(&mut || {
        std::hint::black_box(forward(&g, images, &x, &wt, m, None));
    });
    let bi2 = best(&mut || {
        std::hint::black_box(backward_input(&g, images, &wt, m, &dy));
    });
    let bw2 = best(&mut || {
        std::hint::black_box(backward_weight(&g, images, &x, &dy, m));
    });
    let bb = best(&mut || {
        std::hint::black_box(bias_grad(images, m, g.p(), &dy));
    });
    eprintln!("stem fwd {f2:.2}, dx {bi2:.2}, dw {bw2:.2}, db {bb:.2}");
    if std::env::var("LOOP").is_ok() {
        for _ in 0..200 {
            std::hint::black_box(backward_weight(&g, images, &x, &dy, m));
        }
    }
}
