//! JSON input values for `tessera eval`, and JSON output of values.

use std::collections::HashMap;
use std::fmt::Write;

use ndarray::ArrayD;
use serde_json::Value as Json;
use tessera_graph::{DType, Graph, Op, TensorType, Value};

/// The fields of a JSON object in file order, each name once (serde_json's map keeps the last
/// of repeated names silently).
struct UniqueFields(Vec<(String, Json)>);

impl<'de> serde::Deserialize<'de> for UniqueFields {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Fields;
        impl<'de> serde::de::Visitor<'de> for Fields {
            type Value = UniqueFields;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object mapping input names to values")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<UniqueFields, A::Error> {
                let mut fields: Vec<(String, Json)> = Vec::new();
                while let Some((name, value)) = map.next_entry::<String, Json>()? {
                    if fields.iter().any(|(n, _)| *n == name) {
                        return Err(serde::de::Error::custom(format!("input `{name}` is given twice")));
                    }
                    fields.push((name, value));
                }
                Ok(UniqueFields(fields))
            }
        }
        deserializer.deserialize_map(Fields)
    }
}

/// Reads a JSON object of input values and converts each to the type its input declares.
/// Every declared input must be given, nothing else, each once.
pub fn parse_inputs(graph: &Graph, text: &str) -> Result<HashMap<String, Value>, String> {
    let UniqueFields(fields) = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
    let map: HashMap<String, Json> = fields.into_iter().collect();
    let mut declared: Vec<String> = graph.inputs().iter().filter_map(|&id| graph.input_name(id)).map(str::to_string).collect();
    if let Some(unknown) = map.keys().filter(|k| !declared.contains(k)).min() {
        declared.sort();
        let known = if declared.is_empty() { "none".to_string() } else { declared.join(", ") };
        return Err(format!("unknown input `{unknown}` (the graph's inputs: {known})"));
    }
    let mut values = HashMap::new();
    for &id in graph.inputs() {
        let Op::Input { name, ty } = &graph.node(id).op else { continue };
        let json = map.get(name.as_ref()).ok_or_else(|| format!("missing input `{name}` (expected {ty})"))?;
        let value = json_to_value(json, ty).map_err(|e| format!("input `{name}`: {e}"))?;
        values.insert(name.to_string(), value);
    }
    Ok(values)
}

/// Converts a number or nested list to a value of type `ty`, checking shape and dtype.
fn json_to_value(json: &Json, ty: &TensorType) -> Result<Value, String> {
    let mut shape = Vec::new();
    let mut leaves = Vec::new();
    flatten(json, 0, &mut shape, &mut leaves)?;
    if shape != ty.shape.dims() {
        return Err(format!("has shape {:?}, expected {}", shape, ty.shape));
    }
    let dims = ty.shape.dims().to_vec();
    let shape_err = |e: ndarray::ShapeError| e.to_string();
    match ty.dtype {
        DType::F64 => {
            let data = leaves.iter().map(|j| f64_leaf(j).ok_or("expected numbers (or \"nan\", \"inf\", \"-inf\")")).collect::<Result<Vec<_>, _>>()?;
            ArrayD::from_shape_vec(dims, data).map(Value::F64).map_err(shape_err)
        }
        DType::I64 => {
            let data = leaves.iter().map(|j| j.as_i64().ok_or("expected integers")).collect::<Result<Vec<_>, _>>()?;
            ArrayD::from_shape_vec(dims, data).map(Value::I64).map_err(shape_err)
        }
        DType::Bool => {
            let data = leaves.iter().map(|j| j.as_bool().ok_or("expected true/false")).collect::<Result<Vec<_>, _>>()?;
            ArrayD::from_shape_vec(dims, data).map(Value::Bool).map_err(shape_err)
        }
    }
}

/// A number, or one of the strings that [`outputs_to_json`] writes for non-finite floats.
fn f64_leaf(json: &Json) -> Option<f64> {
    match json {
        Json::String(s) => match s.as_str() {
            "nan" => Some(f64::NAN),
            "inf" => Some(f64::INFINITY),
            "-inf" => Some(f64::NEG_INFINITY),
            _ => None,
        },
        other => other.as_f64(),
    }
}

/// Collects the leaves of a rectangular nested list and its shape.
fn flatten<'a>(json: &'a Json, depth: usize, shape: &mut Vec<usize>, leaves: &mut Vec<&'a Json>) -> Result<(), String> {
    match json {
        Json::Array(items) => {
            if shape.len() == depth {
                shape.push(items.len());
            } else if shape.get(depth) != Some(&items.len()) {
                return Err("nested lists are not rectangular".into());
            }
            items.iter().try_for_each(|item| flatten(item, depth + 1, shape, leaves))
        }
        leaf => {
            if depth != shape.len() {
                return Err("nested lists are not rectangular".into());
            }
            leaves.push(leaf);
            Ok(())
        }
    }
}

/// Formats output values as a JSON array (non-finite floats as the strings "nan", "inf", "-inf").
pub fn outputs_to_json(values: &[Value]) -> String {
    let mut out = String::from("[");
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write_value(&mut out, v);
    }
    out.push(']');
    out
}

fn write_value(out: &mut String, v: &Value) {
    let shape = v.shape();
    let elems: Vec<String> = match v {
        Value::F64(a) => a.iter().map(|&x| format_f64(x)).collect(),
        Value::I64(a) => a.iter().map(|x| x.to_string()).collect(),
        Value::Bool(a) => a.iter().map(|x| x.to_string()).collect(),
    };
    write_nested(out, shape.dims(), &elems);
}

fn write_nested(out: &mut String, dims: &[usize], elems: &[String]) {
    match dims.split_first() {
        None => out.push_str(elems.first().map(String::as_str).unwrap_or("null")),
        Some((&n, rest)) => {
            let chunk = rest.iter().product::<usize>();
            out.push('[');
            for k in 0..n {
                if k > 0 {
                    out.push_str(", ");
                }
                write_nested(out, rest, &elems[k * chunk..(k + 1) * chunk]);
            }
            out.push(']');
        }
    }
}

fn format_f64(x: f64) -> String {
    if x.is_nan() {
        "\"nan\"".into()
    } else if x.is_infinite() {
        if x > 0.0 { "\"inf\"".into() } else { "\"-inf\"".into() }
    } else {
        let mut s = String::new();
        let _ = write!(s, "{x:?}");
        s
    }
}
