//! Response format checks: is the complete response valid JSON (also when
//! fenced in ```` ```json … ``` ````), and does it satisfy a JSON-Schema
//! subset.
//!
//! # The subset
//! `type` (a name or an array of names; `integer` accepts numbers with no
//! fractional part), `required`, `properties`, `additionalProperties`
//! (boolean only), `enum`, `items` (one schema for every element),
//! `minItems`/`maxItems`, `minLength`/`maxLength` (in characters),
//! `minimum`/`maximum`; `true`/`false` as schemas. Annotations (`title`,
//! `description`, `$schema`, `$id`, `$comment`, `default`, `examples`,
//! `deprecated`, `readOnly`, `writeOnly`) are accepted and ignored. Any
//! other keyword is a compile error naming it: a schema that silently
//! checks less than its author believes is worse than none.
//!
//! Violations carry a JSON pointer (`/items/2/name: expected string`).
//! Recursion is bounded: schemas deeper than [`MAX_SCHEMA_DEPTH`] are
//! rejected, and validation only descends where the schema does
//! (`serde_json` itself refuses documents nested deeper than 128).

use std::fmt;

use serde_json::{Map, Value};

/// Deepest schema accepted.
pub const MAX_SCHEMA_DEPTH: usize = 32;
/// Most violations reported for one document.
pub const MAX_VIOLATIONS: usize = 100;

/// A response that is not valid JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    /// serde_json's message.
    pub message: String,
    /// 1-based line in the (unfenced) JSON text.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid JSON at line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

/// The JSON text of a response: trimmed, and without a surrounding
/// ```` ``` ```` / ```` ```json ```` fence.
pub fn unfence(text: &str) -> &str {
    let t = text.trim();
    let Some(rest) = t.strip_prefix("```") else {
        return t;
    };
    // Drop the info string line (```json).
    let body = match rest.find('\n') {
        Some(nl) => &rest[nl + 1..],
        None => rest,
    };
    body.trim_end().strip_suffix("```").unwrap_or(body).trim()
}

/// Parses a complete response as JSON (unfenced first).
pub fn parse_response(text: &str) -> Result<Value, JsonError> {
    serde_json::from_str(unfence(text)).map_err(|e| JsonError {
        message: e.to_string(),
        line: e.line(),
        column: e.column(),
    })
}

/// A schema compile error: the JSON pointer into the schema and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaError {
    /// Pointer into the schema document.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for SchemaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "schema {}: {}", display_path(&self.path), self.message)
    }
}

/// A place where a document breaks the schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// JSON pointer into the document ("" is the root).
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", display_path(&self.path), self.message)
    }
}

fn display_path(p: &str) -> &str {
    if p.is_empty() {
        "(root)"
    } else {
        p
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JType {
    String,
    Number,
    Integer,
    Boolean,
    Object,
    Array,
    Null,
}

impl JType {
    fn parse(s: &str) -> Option<JType> {
        Some(match s {
            "string" => JType::String,
            "number" => JType::Number,
            "integer" => JType::Integer,
            "boolean" => JType::Boolean,
            "object" => JType::Object,
            "array" => JType::Array,
            "null" => JType::Null,
            _ => return None,
        })
    }
    fn name(self) -> &'static str {
        match self {
            JType::String => "string",
            JType::Number => "number",
            JType::Integer => "integer",
            JType::Boolean => "boolean",
            JType::Object => "object",
            JType::Array => "array",
            JType::Null => "null",
        }
    }
    fn matches(self, v: &Value) -> bool {
        match self {
            JType::String => v.is_string(),
            JType::Number => v.is_number(),
            JType::Integer => is_integer(v),
            JType::Boolean => v.is_boolean(),
            JType::Object => v.is_object(),
            JType::Array => v.is_array(),
            JType::Null => v.is_null(),
        }
    }
}

fn is_integer(v: &Value) -> bool {
    match v {
        Value::Number(n) => {
            n.is_i64()
                || n.is_u64()
                || n.as_f64()
                    .is_some_and(|f| f.is_finite() && f.fract() == 0.0)
        }
        _ => false,
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
struct Node {
    /// `Some(false)` for the `false` schema (nothing validates).
    never: bool,
    types: Option<Vec<JType>>,
    required: Vec<String>,
    properties: Vec<(String, Node)>,
    additional: Option<bool>,
    enumeration: Option<Vec<Value>>,
    items: Option<Box<Node>>,
    min_items: Option<u64>,
    max_items: Option<u64>,
    min_length: Option<u64>,
    max_length: Option<u64>,
    minimum: Option<f64>,
    maximum: Option<f64>,
}

/// A compiled schema.
#[derive(Debug, Clone, PartialEq)]
pub struct Schema {
    root: Node,
}

const SUPPORTED: &[&str] = &[
    "type",
    "required",
    "properties",
    "additionalProperties",
    "enum",
    "items",
    "minItems",
    "maxItems",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
];
const ANNOTATIONS: &[&str] = &[
    "$schema",
    "$id",
    "$comment",
    "title",
    "description",
    "default",
    "examples",
    "deprecated",
    "readOnly",
    "writeOnly",
];

fn escape_token(t: &str) -> String {
    t.replace('~', "~0").replace('/', "~1")
}

impl Schema {
    /// Compiles a schema document. Unsupported keywords are an error that
    /// names all of them.
    pub fn compile(schema: &Value) -> Result<Schema, SchemaError> {
        Ok(Schema {
            root: compile_node(schema, "", 0)?,
        })
    }

    /// Parses and compiles a schema from JSON text.
    pub fn from_json(text: &str) -> Result<Schema, SchemaError> {
        let v: Value = serde_json::from_str(text).map_err(|e| SchemaError {
            path: String::new(),
            message: format!("not JSON: {e}"),
        })?;
        Self::compile(&v)
    }

    /// Validates a document; empty when it conforms. At most
    /// [`MAX_VIOLATIONS`] are reported.
    pub fn validate(&self, doc: &Value) -> Vec<Violation> {
        let mut out = Vec::new();
        let mut path = String::new();
        validate_node(&self.root, doc, &mut path, &mut out);
        out
    }

    /// Parses a response (unfenced) and validates it: the JSON error, or
    /// the violations.
    pub fn check_response(&self, text: &str) -> Result<(), FormatProblem> {
        let v = parse_response(text).map_err(FormatProblem::Json)?;
        let errs = self.validate(&v);
        if errs.is_empty() {
            Ok(())
        } else {
            Err(FormatProblem::Schema(errs))
        }
    }
}

/// Why a response failed its format check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormatProblem {
    /// Not JSON at all.
    Json(JsonError),
    /// JSON that breaks the schema.
    Schema(Vec<Violation>),
}

fn err(path: &str, message: impl Into<String>) -> SchemaError {
    SchemaError {
        path: path.to_string(),
        message: message.into(),
    }
}

fn non_negative(v: &Value, path: &str, key: &str) -> Result<u64, SchemaError> {
    v.as_u64()
        .ok_or_else(|| err(&format!("{path}/{key}"), "must be a non-negative integer"))
}

fn compile_node(s: &Value, path: &str, depth: usize) -> Result<Node, SchemaError> {
    if depth > MAX_SCHEMA_DEPTH {
        return Err(err(
            path,
            format!("nested deeper than {MAX_SCHEMA_DEPTH} levels"),
        ));
    }
    let obj: &Map<String, Value> = match s {
        Value::Bool(true) => return Ok(Node::default()),
        Value::Bool(false) => {
            return Ok(Node {
                never: true,
                ..Node::default()
            })
        }
        Value::Object(o) => o,
        _ => return Err(err(path, "a schema must be an object or a boolean")),
    };
    let unsupported: Vec<&str> = obj
        .keys()
        .map(String::as_str)
        .filter(|k| !SUPPORTED.contains(k) && !ANNOTATIONS.contains(k))
        .collect();
    if !unsupported.is_empty() {
        return Err(err(
            path,
            format!(
                "unsupported keyword{} {}",
                if unsupported.len() > 1 { "s" } else { "" },
                unsupported
                    .iter()
                    .map(|k| format!("{k:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    let mut n = Node::default();
    if let Some(t) = obj.get("type") {
        let names: Vec<&Value> = match t {
            Value::Array(a) => a.iter().collect(),
            other => vec![other],
        };
        let mut types = Vec::new();
        for name in names {
            let ty = name
                .as_str()
                .and_then(JType::parse)
                .ok_or_else(|| err(&format!("{path}/type"), format!("unknown type {name}")))?;
            types.push(ty);
        }
        if types.is_empty() {
            return Err(err(&format!("{path}/type"), "empty type list"));
        }
        n.types = Some(types);
    }
    if let Some(r) = obj.get("required") {
        let arr = r
            .as_array()
            .ok_or_else(|| err(&format!("{path}/required"), "must be an array of strings"))?;
        for (i, x) in arr.iter().enumerate() {
            n.required.push(
                x.as_str()
                    .ok_or_else(|| err(&format!("{path}/required/{i}"), "must be a string"))?
                    .to_string(),
            );
        }
    }
    if let Some(p) = obj.get("properties") {
        let map = p
            .as_object()
            .ok_or_else(|| err(&format!("{path}/properties"), "must be an object"))?;
        for (k, sub) in map {
            let sub_path = format!("{path}/properties/{}", escape_token(k));
            n.properties
                .push((k.clone(), compile_node(sub, &sub_path, depth + 1)?));
        }
    }
    if let Some(a) = obj.get("additionalProperties") {
        n.additional = Some(a.as_bool().ok_or_else(|| {
            err(
                &format!("{path}/additionalProperties"),
                "only true or false is supported (schemas here are not)",
            )
        })?);
    }
    if let Some(e) = obj.get("enum") {
        let arr = e
            .as_array()
            .ok_or_else(|| err(&format!("{path}/enum"), "must be an array"))?;
        n.enumeration = Some(arr.clone());
    }
    if let Some(it) = obj.get("items") {
        if it.is_array() {
            return Err(err(
                &format!("{path}/items"),
                "tuple form (an array of schemas) is not supported",
            ));
        }
        n.items = Some(Box::new(compile_node(
            it,
            &format!("{path}/items"),
            depth + 1,
        )?));
    }
    if let Some(v) = obj.get("minItems") {
        n.min_items = Some(non_negative(v, path, "minItems")?);
    }
    if let Some(v) = obj.get("maxItems") {
        n.max_items = Some(non_negative(v, path, "maxItems")?);
    }
    if let Some(v) = obj.get("minLength") {
        n.min_length = Some(non_negative(v, path, "minLength")?);
    }
    if let Some(v) = obj.get("maxLength") {
        n.max_length = Some(non_negative(v, path, "maxLength")?);
    }
    if let Some(v) = obj.get("minimum") {
        n.minimum = Some(
            v.as_f64()
                .ok_or_else(|| err(&format!("{path}/minimum"), "must be a number"))?,
        );
    }
    if let Some(v) = obj.get("maximum") {
        n.maximum = Some(
            v.as_f64()
                .ok_or_else(|| err(&format!("{path}/maximum"), "must be a number"))?,
        );
    }
    Ok(n)
}

fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(p), Some(q)) => p == q,
            _ => x == y,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_equal(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) if is_integer(v) => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn push(out: &mut Vec<Violation>, path: &str, message: String) {
    if out.len() < MAX_VIOLATIONS {
        out.push(Violation {
            path: path.to_string(),
            message,
        });
    }
}

fn validate_node(n: &Node, v: &Value, path: &mut String, out: &mut Vec<Violation>) {
    if out.len() >= MAX_VIOLATIONS {
        return;
    }
    if n.never {
        push(out, path, "no value is allowed here".into());
        return;
    }
    if let Some(types) = &n.types {
        if !types.iter().any(|t| t.matches(v)) {
            let want: Vec<&str> = types.iter().map(|t| t.name()).collect();
            push(
                out,
                path,
                format!("expected {}, found {}", want.join(" or "), type_name(v)),
            );
            return;
        }
    }
    if let Some(e) = &n.enumeration {
        if !e.iter().any(|x| json_equal(x, v)) {
            push(
                out,
                path,
                format!(
                    "value {} is not one of {}",
                    short(v),
                    short(&Value::Array(e.clone()))
                ),
            );
        }
    }
    match v {
        Value::String(s) => {
            let len = s.chars().count() as u64;
            if let Some(m) = n.min_length.filter(|m| len < *m) {
                push(out, path, format!("string shorter than {m} characters"));
            }
            if let Some(m) = n.max_length.filter(|m| len > *m) {
                push(out, path, format!("string longer than {m} characters"));
            }
        }
        Value::Number(num) => {
            if let Some(f) = num.as_f64() {
                if let Some(m) = n.minimum.filter(|m| f < *m) {
                    push(out, path, format!("{f} is below the minimum {m}"));
                }
                if let Some(m) = n.maximum.filter(|m| f > *m) {
                    push(out, path, format!("{f} is above the maximum {m}"));
                }
            }
        }
        Value::Array(a) => {
            let len = a.len() as u64;
            if let Some(m) = n.min_items.filter(|m| len < *m) {
                push(out, path, format!("fewer than {m} items"));
            }
            if let Some(m) = n.max_items.filter(|m| len > *m) {
                push(out, path, format!("more than {m} items"));
            }
            if let Some(item) = &n.items {
                for (i, x) in a.iter().enumerate() {
                    let len = path.len();
                    path.push('/');
                    path.push_str(&i.to_string());
                    validate_node(item, x, path, out);
                    path.truncate(len);
                    if out.len() >= MAX_VIOLATIONS {
                        return;
                    }
                }
            }
        }
        Value::Object(o) => {
            for r in &n.required {
                if !o.contains_key(r) {
                    push(out, path, format!("missing required property {r:?}"));
                }
            }
            for (k, x) in o {
                let len = path.len();
                path.push('/');
                path.push_str(&escape_token(k));
                match n.properties.iter().find(|(name, _)| name == k) {
                    Some((_, sub)) => validate_node(sub, x, path, out),
                    None if n.additional == Some(false) => {
                        push(out, path, "additional property not allowed".into())
                    }
                    None => {}
                }
                path.truncate(len);
                if out.len() >= MAX_VIOLATIONS {
                    return;
                }
            }
        }
        _ => {}
    }
}

/// A short rendering of a value for messages (never the whole document).
fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        let cut: String = s.chars().take(57).collect();
        format!("{cut}...")
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn violations(schema: Value, doc: &str) -> Vec<String> {
        let s = Schema::compile(&schema).unwrap();
        s.validate(&parse_response(doc).unwrap())
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn json_validity_with_and_without_fences() {
        assert!(parse_response("{\"a\": 1}").is_ok());
        assert!(parse_response("```json\n{\"a\": [1, 2]}\n```").is_ok());
        assert!(parse_response("  ```\n[true]\n```  ").is_ok());
        let e = parse_response("{\"a\": 1,}").unwrap_err();
        assert_eq!(e.line, 1);
        assert!(e.to_string().contains("line 1"));
        assert!(parse_response("Sure! Here is the JSON: {\"a\": 1}").is_err());
        assert!(parse_response("").is_err());
    }

    #[test]
    fn nested_violations_carry_json_pointers() {
        let schema = json!({
            "type": "object",
            "required": ["items"],
            "properties": {
                "items": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name", "qty"],
                        "additionalProperties": false,
                        "properties": {
                            "name": {"type": "string", "minLength": 1},
                            "qty": {"type": "integer", "minimum": 1, "maximum": 99}
                        }
                    }
                }
            }
        });
        let doc = r#"{"items": [{"name": "a", "qty": 1}, {"name": "b", "qty": 2.5}, {"name": 3, "qty": 0, "x": 1}, {"qty": 1}]}"#;
        assert_eq!(
            violations(schema, doc),
            vec![
                "/items/1/qty: expected integer, found number",
                "/items/2/name: expected string, found integer",
                "/items/2/qty: 0 is below the minimum 1",
                "/items/2/x: additional property not allowed",
                "/items/3: missing required property \"name\"",
            ]
        );
    }

    #[test]
    fn types_enums_and_lengths() {
        assert!(violations(json!({"type": ["string", "null"]}), "null").is_empty());
        assert_eq!(
            violations(json!({"type": ["string", "null"]}), "1"),
            vec!["(root): expected string or null, found integer"]
        );
        assert!(violations(json!({"type": "integer"}), "3.0").is_empty());
        assert!(violations(json!({"type": "number"}), "3").is_empty());
        assert!(violations(json!({"enum": ["red", "green", 1]}), "1.0").is_empty());
        assert_eq!(
            violations(json!({"enum": ["red", "green"]}), "\"blue\"").len(),
            1
        );
        assert_eq!(
            violations(json!({"type": "string", "maxLength": 3}), "\"héllo\""),
            vec!["(root): string longer than 3 characters"]
        );
        assert!(violations(json!({"type": "string", "maxLength": 5}), "\"héllo\"").is_empty());
        assert_eq!(
            violations(
                json!({"type": "array", "minItems": 2, "maxItems": 3}),
                "[1]"
            ),
            vec!["(root): fewer than 2 items"]
        );
        assert_eq!(
            violations(json!({"type": "array", "maxItems": 1}), "[1,2]"),
            vec!["(root): more than 1 items"]
        );
        assert_eq!(
            violations(json!(false), "1"),
            vec!["(root): no value is allowed here"]
        );
        assert!(violations(json!(true), "{\"anything\": [1]}").is_empty());
    }

    #[test]
    fn pointer_tokens_are_escaped() {
        let v = violations(
            json!({"properties": {"a/b": {"type": "string"}, "c~d": {"type": "string"}}}),
            r#"{"a/b": 1, "c~d": 2}"#,
        );
        assert_eq!(
            v,
            vec![
                "/a~1b: expected string, found integer",
                "/c~0d: expected string, found integer"
            ]
        );
    }

    #[test]
    fn unsupported_keywords_are_compile_errors_naming_them() {
        let e = Schema::compile(&json!({"type": "object", "properties": {"x": {"type": "string", "pattern": "^a", "format": "email"}}})).unwrap_err();
        assert_eq!(e.path, "/properties/x");
        assert!(
            e.message.contains("\"format\"") && e.message.contains("\"pattern\""),
            "{e}"
        );
        assert!(e
            .to_string()
            .starts_with("schema /properties/x: unsupported keywords"));
        assert!(
            Schema::compile(&json!({"additionalProperties": {"type": "string"}}))
                .unwrap_err()
                .message
                .contains("only true or false")
        );
        assert!(Schema::compile(&json!({"items": [{"type": "string"}]}))
            .unwrap_err()
            .message
            .contains("tuple"));
        assert!(Schema::compile(&json!({"type": "str"}))
            .unwrap_err()
            .message
            .contains("unknown type"));
        assert!(Schema::compile(&json!({"minLength": -1})).is_err());
        assert!(
            Schema::compile(&json!({"title": "t", "description": "d", "$schema": "x"})).is_ok()
        );
    }

    #[test]
    fn deep_schemas_are_rejected_not_overflowed() {
        let mut s = json!({"type": "string"});
        for _ in 0..(MAX_SCHEMA_DEPTH + 5) {
            s = json!({"items": s});
        }
        assert!(Schema::compile(&s)
            .unwrap_err()
            .message
            .contains("nested deeper"));
        // Deep documents are refused by the parser, never recursed into.
        let deep = "[".repeat(100_000);
        assert!(parse_response(&deep).is_err());
    }

    #[test]
    fn violation_count_is_capped() {
        let schema =
            Schema::compile(&json!({"type": "array", "items": {"type": "string"}})).unwrap();
        let doc = Value::Array((0..1000).map(|i| json!(i)).collect());
        assert_eq!(schema.validate(&doc).len(), MAX_VIOLATIONS);
    }

    #[test]
    fn check_response_combines_both() {
        let s = Schema::from_json(r#"{"type": "object", "required": ["ok"]}"#).unwrap();
        assert!(s.check_response("```json\n{\"ok\": true}\n```").is_ok());
        assert!(matches!(
            s.check_response("{}"),
            Err(FormatProblem::Schema(_))
        ));
        assert!(matches!(
            s.check_response("nope"),
            Err(FormatProblem::Json(_))
        ));
    }
}
