//! OpenCV's XML cascade storage, LBP flavour: what `opencv_traincascade` writes and
//! `cv::CascadeClassifier` reads (e.g. `lbpcascade_animeface.xml`).
//!
//! ```text
//! <opencv_storage><cascade>
//!   <stageType>BOOST</stageType> <featureType>LBP</featureType> <height>24</height> <width>24</width>
//!   <stages><_>
//!     <maxWeakCount>3</maxWeakCount> <stageThreshold>-1.26</stageThreshold>
//!     <weakClassifiers><_>
//!       <internalNodes>0 -1 FEATURE s0 s1 s2 s3 s4 s5 s6 s7</internalNodes>   (left, right, feature, 256-bit subset)
//!       <leafValues>-0.86 0.83</leafValues>
//!     </_>...</weakClassifiers>
//!   </_>...</stages>
//!   <features><_><rect>x y w h</rect></_>...</features>      (one block of the 3x3 multi-block LBP)
//! </cascade></opencv_storage>
//! ```
//!
//! Only boosted stumps (`maxDepth` 1) over LBP features are supported, as OpenCV's own LBP
//! evaluator does; Haar cascades and the old `opencv-haar-classifier` format are refused with an
//! error that says so.

use std::path::{Path, PathBuf};

use thiserror::Error;

/// OpenCV subtracts this from every stage threshold when it loads a cascade
/// (`THRESHOLD_EPS` in `cascadedetect.cpp`); kyara does the same so borderline windows agree.
pub const THRESHOLD_EPS: f32 = 1e-5;

#[derive(Debug, Error)]
pub enum CascadeError {
    #[error("cannot read the cascade file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a well-formed XML file (truncated, or not XML?): {message}")]
    Xml { path: PathBuf, message: String },
    #[error("{path} is not an OpenCV LBP cascade: {message}")]
    Format { path: PathBuf, message: String },
}

/// An axis-aligned rectangle in pixels: `x`, `y` of the top-left corner, `width`, `height`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Rect {
    pub x: i32,
    pub y: i32,
    pub width: i32,
    pub height: i32,
}

impl Rect {
    pub fn new(x: i32, y: i32, width: i32, height: i32) -> Self {
        Self {
            x,
            y,
            width,
            height,
        }
    }

    pub fn area(&self) -> f64 {
        f64::from(self.width.max(0)) * f64::from(self.height.max(0))
    }

    /// Intersection over union, 0..=1.
    pub fn iou(&self, o: &Rect) -> f64 {
        let x0 = self.x.max(o.x);
        let y0 = self.y.max(o.y);
        let x1 = (self.x + self.width).min(o.x + o.width);
        let y1 = (self.y + self.height).min(o.y + o.height);
        let inter = f64::from((x1 - x0).max(0)) * f64::from((y1 - y0).max(0));
        let union = self.area() + o.area() - inter;
        if union > 0.0 { inter / union } else { 0.0 }
    }
}

/// One boosted stump: the LBP code `c` (0..=255) of `feature` picks `leaves[0]` when bit `c` of
/// `subset` is set, else `leaves[1]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Stump {
    pub feature: usize,
    pub subset: [u32; 8],
    pub leaves: [f32; 2],
}

impl Stump {
    /// The stump's vote for LBP code `code`.
    pub fn vote(&self, code: u8) -> f32 {
        let c = usize::from(code);
        if self.subset[c >> 5] & (1 << (c & 31)) != 0 {
            self.leaves[0]
        } else {
            self.leaves[1]
        }
    }
}

/// A stage passes a window when the sum of its stumps' votes is at least `threshold`
/// (the file's `stageThreshold` minus [`THRESHOLD_EPS`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    pub threshold: f32,
    pub stumps: Vec<Stump>,
}

/// A loaded LBP cascade: the window size, the stages in order and the feature rectangles
/// (each the top-left block of a 3x3 grid of `w` x `h` blocks, in window pixels).
#[derive(Debug, Clone, PartialEq)]
pub struct Cascade {
    pub width: u32,
    pub height: u32,
    pub stages: Vec<Stage>,
    pub features: Vec<Rect>,
}

type Node<'a, 'i> = roxmltree::Node<'a, 'i>;

fn child<'a, 'i>(node: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    node.children()
        .find(|c| c.is_element() && c.tag_name().name() == name)
}

fn items<'a, 'i>(node: Node<'a, 'i>) -> impl Iterator<Item = Node<'a, 'i>> {
    node.children().filter(|c| c.is_element())
}

/// All the text inside an element (OpenCV breaks long number lists over lines).
fn text(node: Node) -> String {
    node.descendants()
        .filter(|n| n.is_text())
        .filter_map(|n| n.text())
        .collect::<Vec<_>>()
        .join(" ")
}

impl Cascade {
    /// Reads and parses a cascade file.
    pub fn load(path: &Path) -> Result<Self, CascadeError> {
        let bytes = std::fs::read(path).map_err(|source| CascadeError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let text = String::from_utf8(bytes).map_err(|e| CascadeError::Xml {
            path: path.to_path_buf(),
            message: format!("not UTF-8 text ({e})"),
        })?;
        Self::parse(&text, path)
    }

    /// Parses cascade XML; `origin` names the file in error messages.
    pub fn parse(xml: &str, origin: &Path) -> Result<Self, CascadeError> {
        let fmt = |message: String| CascadeError::Format {
            path: origin.to_path_buf(),
            message,
        };
        let doc = roxmltree::Document::parse(xml).map_err(|e| CascadeError::Xml {
            path: origin.to_path_buf(),
            message: e.to_string(),
        })?;
        let root = doc.root_element();
        if root.tag_name().name() != "opencv_storage" {
            return Err(fmt(format!(
                "the root element is <{}>, not <opencv_storage>",
                root.tag_name().name()
            )));
        }
        let Some(cascade) = items(root).find(|n| child(*n, "stages").is_some()) else {
            return Err(fmt("no element with <stages> under <opencv_storage>".into()));
        };
        if cascade.attribute("type_id") == Some("opencv-haar-classifier") {
            return Err(fmt(
                "this is the old Haar cascade format; only LBP cascades (featureType LBP) are supported"
                    .into(),
            ));
        }
        let field = |name: &str| {
            child(cascade, name)
                .map(|n| text(n).trim().to_string())
                .ok_or_else(|| fmt(format!("no <{name}>")))
        };
        let feature_type = field("featureType")?;
        if !feature_type.eq_ignore_ascii_case("LBP") {
            return Err(fmt(format!(
                "featureType is {feature_type}; only LBP cascades are supported"
            )));
        }
        let stage_type = field("stageType")?;
        if !stage_type.eq_ignore_ascii_case("BOOST") {
            return Err(fmt(format!("stageType is {stage_type}, not BOOST")));
        }
        let size = |name: &str| -> Result<u32, CascadeError> {
            let v = field(name)?;
            v.parse::<u32>()
                .ok()
                .filter(|&s| (1..=4096).contains(&s))
                .ok_or_else(|| fmt(format!("<{name}> is '{v}', not a window size")))
        };
        let (width, height) = (size("width")?, size("height")?);

        let features_node =
            child(cascade, "features").ok_or_else(|| fmt("no <features>".into()))?;
        let mut features = Vec::new();
        for (i, f) in items(features_node).enumerate() {
            let r = child(f, "rect").ok_or_else(|| fmt(format!("feature {i} has no <rect>")))?;
            let v = ints(&text(r)).map_err(|e| fmt(format!("feature {i}: {e}")))?;
            let [x, y, w, h] = v[..] else {
                return Err(fmt(format!(
                    "feature {i}: <rect> has {} numbers, not x y w h",
                    v.len()
                )));
            };
            let fits =
                |o: i64, s: i64, limit: u32| o >= 0 && s > 0 && o + 3 * s <= i64::from(limit);
            if !fits(x, w, width) || !fits(y, h, height) {
                return Err(fmt(format!(
                    "feature {i}: the 3x3 blocks of {x} {y} {w} {h} leave the {width}x{height} window"
                )));
            }
            features.push(Rect::new(x as i32, y as i32, w as i32, h as i32));
        }

        let stages_node = child(cascade, "stages").ok_or_else(|| fmt("no <stages>".into()))?;
        let mut stages = Vec::new();
        for (si, s) in items(stages_node).enumerate() {
            let sfield = |name: &str| {
                child(s, name)
                    .map(|n| text(n).trim().to_string())
                    .ok_or_else(|| fmt(format!("stage {si} has no <{name}>")))
            };
            let threshold_text = sfield("stageThreshold")?;
            let threshold: f32 = threshold_text
                .parse()
                .ok()
                .filter(|t: &f32| t.is_finite())
                .ok_or_else(|| {
                    fmt(format!(
                        "stage {si}: stageThreshold '{threshold_text}' is not a number"
                    ))
                })?;
            let weak = child(s, "weakClassifiers")
                .ok_or_else(|| fmt(format!("stage {si} has no <weakClassifiers>")))?;
            let mut stumps = Vec::new();
            for (wi, w) in items(weak).enumerate() {
                let at = format!("stage {si}, weak classifier {wi}");
                let nodes = child(w, "internalNodes")
                    .ok_or_else(|| fmt(format!("{at} has no <internalNodes>")))?;
                let nodes = ints(&text(nodes)).map_err(|e| fmt(format!("{at}: {e}")))?;
                if nodes.len() != 11 {
                    return Err(fmt(format!(
                        "{at}: {} internal-node numbers; only stumps over 256 LBP codes \
                         (left, right, feature, 8 subset words = 11) are supported",
                        nodes.len()
                    )));
                }
                let feature = usize::try_from(nodes[2])
                    .ok()
                    .filter(|&f| f < features.len())
                    .ok_or_else(|| {
                        fmt(format!(
                            "{at}: feature index {} is not one of the {} features",
                            nodes[2],
                            features.len()
                        ))
                    })?;
                let mut subset = [0u32; 8];
                for (k, word) in nodes[3..].iter().enumerate() {
                    // Written as signed 32-bit words.
                    subset[k] = i32::try_from(*word)
                        .map(|v| v as u32)
                        .or_else(|_| u32::try_from(*word))
                        .map_err(|_| fmt(format!("{at}: subset word {word} is not 32-bit")))?;
                }
                let leaves_node = child(w, "leafValues")
                    .ok_or_else(|| fmt(format!("{at} has no <leafValues>")))?;
                let leaves = floats(&text(leaves_node)).map_err(|e| fmt(format!("{at}: {e}")))?;
                let [l0, l1] = leaves[..] else {
                    return Err(fmt(format!(
                        "{at}: {} leaf values, a stump has 2",
                        leaves.len()
                    )));
                };
                stumps.push(Stump {
                    feature,
                    subset,
                    leaves: [l0, l1],
                });
            }
            if stumps.is_empty() {
                return Err(fmt(format!("stage {si} has no weak classifiers")));
            }
            if let Ok(n) = sfield("maxWeakCount")
                && n.parse::<usize>().ok() != Some(stumps.len())
            {
                return Err(fmt(format!(
                    "stage {si}: maxWeakCount is {n} but it holds {} weak classifiers \
                     (truncated file?)",
                    stumps.len()
                )));
            }
            stages.push(Stage {
                threshold: threshold - THRESHOLD_EPS,
                stumps,
            });
        }
        if stages.is_empty() {
            return Err(fmt("<stages> is empty".into()));
        }
        if let Ok(n) = field("stageNum")
            && n.parse::<usize>().ok() != Some(stages.len())
        {
            return Err(fmt(format!(
                "stageNum is {n} but there are {} stages (truncated file?)",
                stages.len()
            )));
        }
        Ok(Cascade {
            width,
            height,
            stages,
            features,
        })
    }
}

fn ints(s: &str) -> Result<Vec<i64>, String> {
    s.split_whitespace()
        .map(|t| {
            t.parse()
                .map_err(|_| format!("'{t}' is not a whole number"))
        })
        .collect()
}

fn floats(s: &str) -> Result<Vec<f32>, String> {
    s.split_whitespace()
        .map(|t| {
            t.parse::<f32>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| format!("'{t}' is not a number"))
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A one-stage, one-stump cascade over a 6x6 window whose single feature is 2x2 blocks at
    /// (0, 0): it passes when the LBP code's bit `code` is set (vote +1 against threshold 0.5).
    pub fn one_stump_xml(code: u8) -> String {
        let mut subset = [0u32; 8];
        subset[usize::from(code) >> 5] |= 1 << (code & 31);
        let words: Vec<String> = subset.iter().map(|w| (*w as i32).to_string()).collect();
        format!(
            r#"<?xml version="1.0"?>
<opencv_storage>
<cascade>
  <stageType>BOOST</stageType>
  <featureType>LBP</featureType>
  <height>6</height>
  <width>6</width>
  <stageNum>1</stageNum>
  <stages>
    <_>
      <maxWeakCount>1</maxWeakCount>
      <stageThreshold>5.0e-01</stageThreshold>
      <weakClassifiers>
        <_>
          <internalNodes>
            0 -1 0 {}</internalNodes>
          <leafValues>
            1.0 -1.0</leafValues></_></weakClassifiers></_></stages>
  <features>
    <_>
      <rect>
        0 0 2 2</rect></_></features></cascade>
</opencv_storage>
"#,
            words.join(" ")
        )
    }

    #[test]
    fn parses_a_one_stage_cascade() {
        let c = Cascade::parse(&one_stump_xml(255), Path::new("t.xml")).unwrap();
        assert_eq!((c.width, c.height), (6, 6));
        assert_eq!(c.features, vec![Rect::new(0, 0, 2, 2)]);
        assert_eq!(c.stages.len(), 1);
        assert_eq!(c.stages[0].threshold, 0.5 - THRESHOLD_EPS);
        let s = &c.stages[0].stumps[0];
        // Bit 255 lives in the top bit of the last word, written as the signed -2147483648.
        assert_eq!(s.subset[7], 1 << 31);
        assert_eq!(s.vote(255), 1.0);
        assert_eq!(s.vote(254), -1.0);
    }

    #[test]
    fn truncated_foreign_and_haar_files_are_clear_errors() {
        let good = one_stump_xml(3);
        let p = Path::new("c.xml");
        let truncated = &good[..good.len() / 2];
        let e = Cascade::parse(truncated, p).unwrap_err().to_string();
        assert!(e.contains("not a well-formed XML"), "{e}");

        let haar = good.replace("<featureType>LBP", "<featureType>HAAR");
        let e = Cascade::parse(&haar, p).unwrap_err().to_string();
        assert!(e.contains("featureType is HAAR"), "{e}");

        let e = Cascade::parse("<html><body/></html>", p)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not <opencv_storage>"), "{e}");

        let old = good.replace("<cascade>", r#"<cascade type_id="opencv-haar-classifier">"#);
        let e = Cascade::parse(&old, p).unwrap_err().to_string();
        assert!(e.contains("old Haar cascade format"), "{e}");

        let bad_feature = good.replace("0 -1 0 ", "0 -1 7 ");
        let e = Cascade::parse(&bad_feature, p).unwrap_err().to_string();
        assert!(e.contains("feature index 7"), "{e}");

        let outside = good.replace("0 0 2 2</rect>", "2 0 2 2</rect>");
        let e = Cascade::parse(&outside, p).unwrap_err().to_string();
        assert!(e.contains("leave the 6x6 window"), "{e}");

        let lost_stage = good.replace("<stageNum>1", "<stageNum>20");
        let e = Cascade::parse(&lost_stage, p).unwrap_err().to_string();
        assert!(e.contains("truncated file?"), "{e}");

        let e = Cascade::load(Path::new("/nonexistent/cascade.xml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot read the cascade file"), "{e}");
    }
}
