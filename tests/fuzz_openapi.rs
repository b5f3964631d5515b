//! A schema-driven HTTP fuzzer: it reads `/openapi.json` from a running
//! engine and, for every operation, sends requests generated from the
//! schemas — valid instances, boundary values, wrong types, missing
//! required and unknown fields, huge strings, unicode and control
//! characters, invalid JSON, wrong content types, random path and query
//! parameters, with and without (good) keys, wrong methods — and checks
//! every answer:
//!
//! - never a 5xx;
//! - every 4xx is `application/problem+json` with a `type` from the
//!   document's list and the status repeated (401 with
//!   `WWW-Authenticate`, 405 with `Allow`, 429 with `Retry-After`);
//! - on a documented route, the status is one the operation documents, and
//!   a 2xx has the documented content type and matches its schema, with
//!   no undocumented field;
//! - a request valid per the document is accepted, or refused only for
//!   what the document cannot rule out (`accepted_when_valid`).
//!
//! Seeded and bounded: `FUZZ_SEED` (default below) makes a run repeatable,
//! `FUZZ_CASES` sets the requests per operation. A failure prints the seed
//! and each failing request and answer.
//!
//! Requests go over a plain TCP socket, not an HTTP client library, so
//! that they can carry what a client library refuses to send (bodies on a
//! GET, odd header bytes, broken percent-encoding); they are still
//! well-formed HTTP/1.1, since a malformed request line or header is
//! refused by the HTTP layer before the API sees it.

mod support;

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use regex_syntax::hir::{Class, Hir, HirKind};
use serde_json::{json, Map, Value};
use smppd_actors::simulator::Faults;
use support::*;

const DEFAULT_SEED: u64 = 0x5eed_2026;
const DEFAULT_CASES: usize = 300;
const ADMIN_TOKEN: &str = "fuzz-admin-token-0123456789";

// ---------------------------------------------------------------------
// A small deterministic PRNG (SplitMix64): the same seed, the same run.
// ---------------------------------------------------------------------

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// 0..n (0 when n is 0).
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    /// lo..=hi.
    fn between(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        let span = (hi as i128 - lo as i128 + 1) as u128;
        (lo as i128 + (self.next() as u128 % span) as i128) as i64
    }

    fn percent(&mut self, p: usize) -> bool {
        self.below(100) < p
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// A length in min..=max, often at a boundary, otherwise mostly short.
    fn length(&mut self, min: usize, max: usize) -> usize {
        match self.below(10) {
            0 => min,
            1 => max,
            2 => self.between(min as i64, max as i64) as usize,
            _ => self.between(min as i64, max.min(min + 12) as i64) as usize,
        }
    }
}

// ---------------------------------------------------------------------
// Raw HTTP/1.1 over TCP.
// ---------------------------------------------------------------------

#[derive(Clone)]
struct Request {
    method: String,
    /// Path and query, already encoded.
    target: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Option<Vec<u8>>,
}

impl Request {
    fn new(method: &str, target: String) -> Request {
        Request {
            method: method.to_string(),
            target,
            headers: Vec::new(),
            body: None,
        }
    }

    fn header(&mut self, name: &str, value: impl Into<Vec<u8>>) {
        self.headers.push((name.to_string(), value.into()));
    }

    fn describe(&self) -> String {
        let mut text = format!("{} {}\n", self.method, self.target);
        for (name, value) in &self.headers {
            text.push_str(&format!("{name}: {}\n", escape(value, 300)));
        }
        if let Some(body) = &self.body {
            text.push_str(&format!(
                "body ({} bytes): {}\n",
                body.len(),
                escape(body, 2000)
            ));
        }
        text
    }
}

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn content_type(&self) -> &str {
        self.header("content-type").unwrap_or("")
    }

    fn describe(&self) -> String {
        let mut text = format!("{}\n", self.status);
        for (name, value) in &self.headers {
            text.push_str(&format!("{name}: {value}\n"));
        }
        text.push_str(&escape(&self.body, 2000));
        text
    }
}

/// Printable text of some bytes, cut at `max`.
fn escape(bytes: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(max)]);
    let mut out: String = text.escape_debug().collect();
    if bytes.len() > max {
        out.push_str(&format!("… ({} more bytes)", bytes.len() - max));
    }
    out
}

fn send(addr: SocketAddr, request: &Request) -> Result<Response, String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut head = format!(
        "{} {} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n",
        request.method, request.target
    )
    .into_bytes();
    for (name, value) in &request.headers {
        head.extend_from_slice(name.as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value);
        head.extend_from_slice(b"\r\n");
    }
    let body = request.body.as_deref().unwrap_or_default();
    if request.body.is_some() || request.method == "POST" {
        head.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    }
    head.extend_from_slice(b"\r\n");
    head.extend_from_slice(body);
    // The server may answer (413, 401) and close before reading all of a
    // body: a failed write still leaves its answer to read.
    let _ = stream.write_all(&head);

    finish_reading(stream, Vec::new())
}

/// Reads an answer whose first `raw` bytes are already in.
fn finish_reading(mut stream: TcpStream, mut raw: Vec<u8>) -> Result<Response, String> {
    let mut chunk = [0u8; 16 * 1024];
    let header_end = loop {
        if let Some(end) = find(&raw, b"\r\n\r\n") {
            break end;
        }
        match stream.read(&mut chunk) {
            Ok(0) => return Err(format!("connection closed after {} bytes", raw.len())),
            Ok(n) => raw.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(format!("reading the answer: {e}")),
        }
    };
    let head = String::from_utf8_lossy(&raw[..header_end]).to_string();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    if (100..200).contains(&status) {
        // An interim answer (100 Continue): the real one follows.
        raw.drain(..header_end + 4);
        return finish_reading(stream, raw);
    }
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut response = Response {
        status,
        headers,
        body: raw[header_end + 4..].to_vec(),
    };
    // An event stream does not end: its head is the answer.
    if response.content_type().starts_with("text/event-stream") {
        return Ok(response);
    }
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => response.body.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(format!("reading the body: {e}")),
        }
    }
    if response.header("transfer-encoding") == Some("chunked") {
        response.body = dechunk(&response.body)?;
    }
    Ok(response)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = find(data, b"\r\n").ok_or("bad chunk size line")?;
        let size = std::str::from_utf8(&data[..line_end])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next()?.trim(), 16).ok())
            .ok_or("bad chunk size")?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if data.len() < size + 2 {
            return Err("truncated chunk".into());
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// Percent-encodes all but RFC 3986's unreserved characters.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

// ---------------------------------------------------------------------
// The document: `$ref`s, validation, generation.
// ---------------------------------------------------------------------

struct Schemas {
    root: Value,
    regexes: RefCell<HashMap<String, regex::Regex>>,
    problem_types: Vec<String>,
}

impl Schemas {
    fn new(root: Value) -> Schemas {
        let problem_types = root["components"]["schemas"]["Problem"]["properties"]["type"]["enum"]
            .as_array()
            .expect("the Problem schema lists its types")
            .iter()
            .map(|t| t.as_str().unwrap().to_string())
            .collect();
        Schemas {
            root,
            regexes: RefCell::new(HashMap::new()),
            problem_types,
        }
    }

    /// Follows `$ref`s.
    fn resolve<'a>(&'a self, mut schema: &'a Value) -> &'a Value {
        while let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
            let pointer = reference.strip_prefix('#').expect("local $ref");
            schema = self
                .root
                .pointer(pointer)
                .unwrap_or_else(|| panic!("dangling $ref {reference}"));
        }
        schema
    }

    fn matches(&self, pattern: &str, text: &str) -> bool {
        let mut regexes = self.regexes.borrow_mut();
        let regex = regexes.entry(pattern.to_string()).or_insert_with(|| {
            regex::Regex::new(pattern).unwrap_or_else(|e| panic!("pattern {pattern:?}: {e}"))
        });
        regex.is_match(text)
    }

    /// Appends to `errors` every way `value` breaks `schema` (the JSON
    /// Schema keywords the document uses). `closed`: an object may have
    /// only the properties its schema names (for answers, so that a field
    /// the code adds without documenting it is caught).
    fn validate(
        &self,
        schema: &Value,
        value: &Value,
        at: &str,
        closed: bool,
        errors: &mut Vec<String>,
    ) {
        let schema = self.resolve(schema);
        let fails = |s: &Value| {
            let mut e = Vec::new();
            self.validate(s, value, at, closed, &mut e);
            !e.is_empty()
        };
        if let Some(options) = schema.get("oneOf").and_then(Value::as_array) {
            let matching = options.iter().filter(|s| !fails(s)).count();
            if matching != 1 {
                errors.push(format!("{at}: matches {matching} of oneOf: {value}"));
            }
        }
        if let Some(options) = schema.get("anyOf").and_then(Value::as_array) {
            if options.iter().all(fails) {
                errors.push(format!("{at}: matches none of anyOf: {value}"));
            }
        }
        if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
            for s in all {
                self.validate(s, value, at, closed, errors);
            }
        }
        if let Some(options) = schema.get("enum").and_then(Value::as_array) {
            if !options.contains(value) {
                errors.push(format!("{at}: {value} is not one of {options:?}"));
            }
        }
        if let Some(types) = schema.get("type") {
            let types: Vec<&str> = match types {
                Value::String(t) => vec![t.as_str()],
                Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
                _ => vec![],
            };
            let is = |t: &str| match t {
                "null" => value.is_null(),
                "boolean" => value.is_boolean(),
                "string" => value.is_string(),
                "integer" => {
                    value.is_i64()
                        || value.is_u64()
                        || value.as_f64().is_some_and(|f| f.fract() == 0.0)
                }
                "number" => value.is_number(),
                "array" => value.is_array(),
                "object" => value.is_object(),
                _ => true,
            };
            if !types.iter().any(|t| is(t)) {
                errors.push(format!("{at}: {value} is not of type {types:?}"));
                return;
            }
        }
        match value {
            Value::String(text) => {
                let chars = text.chars().count();
                if let Some(min) = schema.get("minLength").and_then(Value::as_u64) {
                    if (chars as u64) < min {
                        errors.push(format!("{at}: shorter than {min}: {text:?}"));
                    }
                }
                if let Some(max) = schema.get("maxLength").and_then(Value::as_u64) {
                    if chars as u64 > max {
                        errors.push(format!("{at}: longer than {max}: {text:?}"));
                    }
                }
                if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
                    if !self.matches(pattern, text) {
                        errors.push(format!("{at}: {text:?} does not match {pattern:?}"));
                    }
                }
                if schema.get("format").and_then(Value::as_str) == Some("date-time")
                    && smppd_actors::smpp::time::parse_rfc3339(text).is_none()
                {
                    errors.push(format!("{at}: {text:?} is not an RFC 3339 time"));
                }
            }
            Value::Number(n) => {
                let n = n.as_f64().unwrap_or(f64::NAN);
                if let Some(min) = schema.get("minimum").and_then(Value::as_f64) {
                    if n < min {
                        errors.push(format!("{at}: {n} is below {min}"));
                    }
                }
                if let Some(max) = schema.get("maximum").and_then(Value::as_f64) {
                    if n > max {
                        errors.push(format!("{at}: {n} is above {max}"));
                    }
                }
            }
            Value::Array(items) => {
                if let Some(min) = schema.get("minItems").and_then(Value::as_u64) {
                    if (items.len() as u64) < min {
                        errors.push(format!("{at}: fewer than {min} items"));
                    }
                }
                if let Some(max) = schema.get("maxItems").and_then(Value::as_u64) {
                    if items.len() as u64 > max {
                        errors.push(format!("{at}: more than {max} items"));
                    }
                }
                if let Some(item_schema) = schema.get("items") {
                    for (i, item) in items.iter().enumerate() {
                        self.validate(item_schema, item, &format!("{at}[{i}]"), closed, errors);
                    }
                }
            }
            Value::Object(object) => {
                let properties = schema.get("properties").and_then(Value::as_object);
                for name in schema
                    .get("required")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                {
                    if !object.contains_key(name) {
                        errors.push(format!("{at}: no {name:?}"));
                    }
                }
                for (name, field) in object {
                    match properties.and_then(|p| p.get(name)) {
                        Some(s) => self.validate(s, field, &format!("{at}.{name}"), closed, errors),
                        None if (closed && properties.is_some())
                            || schema.get("additionalProperties") == Some(&Value::Bool(false)) =>
                        {
                            errors.push(format!("{at}: undocumented field {name:?}"))
                        }
                        None => {}
                    }
                }
            }
            _ => {}
        }
    }

    /// A value the schema accepts.
    fn valid(&self, schema: &Value, rng: &mut Rng, depth: usize) -> Value {
        let schema = self.resolve(schema);
        if let Some(options) = schema.get("enum").and_then(Value::as_array) {
            return rng.pick(options).clone();
        }
        for key in ["oneOf", "anyOf"] {
            if let Some(options) = schema.get(key).and_then(Value::as_array) {
                // Mostly not the null of an optional field.
                let non_null: Vec<&Value> = options
                    .iter()
                    .filter(|o| o.get("type") != Some(&json!("null")))
                    .collect();
                if !non_null.is_empty() && !rng.percent(10) {
                    let option = *rng.pick(&non_null);
                    return self.valid(option, rng, depth);
                }
                return self.valid(rng.pick(options), rng, depth);
            }
        }
        let kind = match schema.get("type") {
            Some(Value::String(t)) => t.clone(),
            Some(Value::Array(ts)) => {
                let ts: Vec<&str> = ts.iter().filter_map(Value::as_str).collect();
                let non_null: Vec<&str> = ts.iter().copied().filter(|t| *t != "null").collect();
                if non_null.is_empty() || rng.percent(10) {
                    rng.pick(&ts).to_string()
                } else {
                    rng.pick(&non_null).to_string()
                }
            }
            _ if schema.get("properties").is_some() => "object".into(),
            _ => "string".into(),
        };
        match kind.as_str() {
            "null" => Value::Null,
            "boolean" => Value::Bool(rng.percent(50)),
            "integer" => {
                let min = schema.get("minimum").and_then(Value::as_i64).unwrap_or(0);
                let max = schema
                    .get("maximum")
                    .and_then(Value::as_i64)
                    .unwrap_or(min + 1000);
                json!(match rng.below(4) {
                    0 => min,
                    1 => max,
                    _ => rng.between(min, max),
                })
            }
            "number" => {
                let exclusive = schema.get("exclusiveMinimum").and_then(Value::as_f64);
                let min = schema
                    .get("minimum")
                    .and_then(Value::as_f64)
                    .or(exclusive.map(|m| m + 0.01))
                    .unwrap_or(0.0);
                let max = schema
                    .get("maximum")
                    .and_then(Value::as_f64)
                    .unwrap_or(min + 1000.0)
                    .min(min + 1e9);
                let value = match rng.below(4) {
                    0 => min,
                    1 => max,
                    _ => {
                        let cents = rng.between(0, ((max - min) * 100.0) as i64);
                        ((min + cents as f64 / 100.0) * 100.0).round() / 100.0
                    }
                };
                json!(value.clamp(min, max))
            }
            "array" => {
                let min = schema.get("minItems").and_then(Value::as_u64).unwrap_or(0) as usize;
                let max = schema
                    .get("maxItems")
                    .and_then(Value::as_u64)
                    .unwrap_or(8)
                    .min(min as u64 + 8) as usize;
                let n = if depth > 3 {
                    min
                } else {
                    rng.between(min as i64, max as i64) as usize
                };
                let items = &schema["items"];
                Value::Array((0..n).map(|_| self.valid(items, rng, depth + 1)).collect())
            }
            "object" => {
                let required: Vec<&str> = schema
                    .get("required")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                let mut object = Map::new();
                for (name, field) in schema
                    .get("properties")
                    .and_then(Value::as_object)
                    .into_iter()
                    .flatten()
                {
                    let required = required.contains(&name.as_str());
                    if !required && NOT_GENERATED.contains(&name.as_str()) {
                        continue;
                    }
                    if required || rng.percent(40) {
                        object.insert(name.clone(), self.valid(field, rng, depth + 1));
                    }
                }
                Value::Object(object)
            }
            _ => Value::String(self.valid_string(schema, rng)),
        }
    }

    fn valid_string(&self, schema: &Value, rng: &mut Rng) -> String {
        if schema.get("format").and_then(Value::as_str) == Some("date-time") {
            return date_time(rng);
        }
        let min = schema.get("minLength").and_then(Value::as_u64).unwrap_or(0) as usize;
        let max = schema
            .get("maxLength")
            .and_then(Value::as_u64)
            .unwrap_or(min as u64 + 24) as usize;
        let Some(pattern) = schema.get("pattern").and_then(Value::as_str) else {
            let n = rng.length(min, max);
            return (0..n).map(|_| text_char(rng)).collect();
        };
        let hir = regex_syntax::parse(pattern).unwrap_or_else(|e| panic!("{pattern:?}: {e}"));
        let anchored = pattern.starts_with('^') && pattern.ends_with('$');
        for _ in 0..50 {
            let mut text = String::new();
            from_regex(&hir, rng, &mut text);
            if !anchored {
                // A match anywhere: pad it to a length in bounds.
                let target = rng.length(min.max(text.chars().count()), max);
                let before = rng.below(target - text.chars().count() + 1);
                let prefix: String = (0..before).map(|_| text_char(rng)).collect();
                let suffix: String = (text.chars().count() + before..target)
                    .map(|_| text_char(rng))
                    .collect();
                text = prefix + &text + &suffix;
            }
            let n = text.chars().count();
            if (min..=max).contains(&n) && self.matches(pattern, &text) {
                return text;
            }
        }
        panic!("no string of {min} to {max} characters matching {pattern:?} in 50 tries")
    }

    /// A value of another JSON type than the schema wants (or one out of
    /// its bounds).
    fn wrong(&self, schema: &Value, rng: &mut Rng) -> Value {
        let schema = self.resolve(schema);
        let candidates = [
            json!(null),
            json!(true),
            json!(0),
            json!(-1),
            json!(1.5),
            json!(1e300),
            json!(u64::MAX),
            json!(""),
            json!(" "),
            json!("x"),
            json!("2026-13-45T99:99:99Z"),
            json!([]),
            json!([1, "a"]),
            json!({}),
            json!({"nested": {"deeper": [null]}}),
            Value::String(huge_string(rng, 300)),
        ];
        for _ in 0..20 {
            let value = rng.pick(&candidates).clone();
            let mut errors = Vec::new();
            self.validate(schema, &value, "", false, &mut errors);
            if !errors.is_empty() {
                return value;
            }
        }
        json!({"surely": "not this"})
    }
}

/// Generates a match of a regular expression.
fn from_regex(hir: &Hir, rng: &mut Rng, out: &mut String) {
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => {}
        HirKind::Literal(literal) => out.push_str(&String::from_utf8_lossy(&literal.0)),
        HirKind::Class(Class::Unicode(class)) => {
            let ranges = class.ranges();
            // Mostly printable ASCII when the class has some.
            let ascii: Vec<char> = ranges
                .iter()
                .flat_map(|r| r.start().max(' ')..=r.end().min('~'))
                .collect();
            if !ascii.is_empty() && rng.percent(70) {
                out.push(*rng.pick(&ascii));
            } else if !ranges.is_empty() {
                let range = rng.pick(ranges);
                let c = rng.between(range.start() as i64, range.end() as i64) as u32;
                out.push(char::from_u32(c).unwrap_or(range.start()));
            }
        }
        HirKind::Class(Class::Bytes(class)) => {
            if let Some(range) = class.ranges().first() {
                out.push(range.start() as char);
            }
        }
        HirKind::Repetition(repetition) => {
            let min = repetition.min as usize;
            let max = repetition.max.map_or(min + 8, |m| m as usize);
            for _ in 0..rng.length(min, max) {
                from_regex(&repetition.sub, rng, out);
            }
        }
        HirKind::Capture(capture) => from_regex(&capture.sub, rng, out),
        HirKind::Concat(parts) => parts.iter().for_each(|p| from_regex(p, rng, out)),
        HirKind::Alternation(options) => from_regex(rng.pick(options), rng, out),
    }
}

/// A character for free text: mostly plain, sometimes anything.
fn text_char(rng: &mut Rng) -> char {
    const SPICE: &[char] = &[
        ' ',
        '{',
        '}',
        '€',
        '[',
        '\\',
        '^',
        '~',
        '|',
        'é',
        'ß',
        'Ω',
        '中',
        '文',
        '😀',
        '🇩',
        '\u{200b}',
        '\u{202e}',
        '\u{0301}',
        '\u{00a0}',
        '\u{feff}',
        '\u{1c}',
        '\t',
        '\n',
        '"',
        '\'',
        '<',
        '%',
        '\u{0}',
        '\u{7f}',
        '\u{ffff}',
        '\u{10ffff}',
    ];
    const PLAIN: &[u8] = b"abcdefghijklmnopqrstuvwxyz ABCDEFGHIJ0123456789.,!?";
    if rng.percent(80) {
        *rng.pick(PLAIN) as char
    } else {
        *rng.pick(SPICE)
    }
}

fn huge_string(rng: &mut Rng, len: usize) -> String {
    let c = text_char(rng);
    std::iter::repeat_n(c, len).collect()
}

/// An RFC 3339 time, mostly within the next months.
fn date_time(rng: &mut Rng) -> String {
    let now = smppd_actors::smpp::time::unix_ms();
    let offset_ms = match rng.below(10) {
        0 => -rng.between(1, 400 * 86_400_000),
        1 => rng.between(367 * 86_400_000, 9000 * 86_400_000),
        _ => rng.between(60_000, 300 * 86_400_000),
    };
    let text = smppd_actors::smpp::time::rfc3339(now + offset_ms);
    match rng.below(4) {
        // "…Z" with milliseconds, as the API writes them.
        0 | 1 => text,
        // Without the fraction.
        2 => format!("{}Z", &text[..19]),
        // With an offset, same instant.
        _ => {
            let shifted = smppd_actors::smpp::time::rfc3339(now + offset_ms + 2 * 3_600_000);
            format!("{}+02:00", &shifted[..23])
        }
    }
}

// ---------------------------------------------------------------------
// Operations and cases.
// ---------------------------------------------------------------------

struct Operation<'a> {
    method: &'static str,
    path: &'a str,
    spec: &'a Value,
    /// Every method the path documents (for the 405's Allow).
    allowed: Vec<String>,
}

impl Operation<'_> {
    fn name(&self) -> String {
        format!("{} {}", self.method.to_uppercase(), self.path)
    }

    fn parameters(&self, place: &str) -> Vec<&Value> {
        self.spec["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["in"] == place)
            .collect()
    }

    fn body_schema(&self) -> Option<&Value> {
        self.spec
            .pointer("/requestBody/content/application~1json/schema")
    }

    fn security(&self) -> Vec<String> {
        self.spec["security"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|r| r.as_object().unwrap().keys().cloned())
            .collect()
    }
}

/// What a case does to an otherwise valid request.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Valid,
    BadBody,
    InvalidJson,
    ContentType,
    Params,
    Auth,
    Headers,
    WrongMethod,
    UnknownPath,
}

const KINDS: [(Kind, usize); 9] = [
    (Kind::Valid, 30),
    (Kind::BadBody, 15),
    (Kind::InvalidJson, 10),
    (Kind::ContentType, 8),
    (Kind::Params, 14),
    (Kind::Auth, 10),
    (Kind::Headers, 5),
    (Kind::WrongMethod, 4),
    (Kind::UnknownPath, 4),
];

/// Content types sent with a JSON body instead of `application/json`
/// (empty: none).
const CONTENT_TYPES: &[&[u8]] = &[
    b"",
    b"text/plain",
    b"application/xml",
    b"application/x-www-form-urlencoded",
    b"multipart/form-data; boundary=x",
    b"application/json; charset=utf-16",
    b"*/*",
    b"application/problem+json",
];

/// Appended to a route's path to leave it.
const SUFFIXES: &[&str] = &["/x", "/", "/extra/deep", "/%2e%2e"];

fn kind(rng: &mut Rng) -> Kind {
    let total: usize = KINDS.iter().map(|(_, w)| w).sum();
    let mut roll = rng.below(total);
    for (kind, weight) in KINDS {
        if roll < weight {
            return kind;
        }
        roll -= weight;
    }
    Kind::Valid
}

struct Fuzzer<'a> {
    schemas: &'a Schemas,
    rng: Rng,
    addr: SocketAddr,
    /// Ids seen in answers, to ask for again.
    message_ids: Vec<String>,
    /// Tenants the fuzzer created over the operator API, newest last: used
    /// as `{id}` of the operator paths, and deleted beyond
    /// [`LIVE_TENANTS`] so that their sessions (to made-up hosts) do not
    /// pile up.
    tenant_ids: Vec<String>,
    /// `(tenant, channel)` of the channels those tenants have.
    channels: Vec<(String, String)>,
}

/// Most fuzzer-made tenants kept at once.
const LIVE_TENANTS: usize = 6;

impl Fuzzer<'_> {
    fn path_value(&mut self, parameter: &Value, kind: Kind) -> String {
        let is_message = parameter["name"] == "id" && self.path_is_message(parameter);
        let schemas = self.schemas;
        let rng = &mut self.rng;
        if kind == Kind::Params && rng.percent(70) {
            let junk = [
                "0".to_string(),
                "-1".into(),
                "+5".into(),
                "ffffffffffffffff".into(),
                "7fffffffffffffff".into(),
                "00000000000000000".into(),
                "9".repeat(40),
                "é€😀".into(),
                "..".into(),
                "%".into(),
                "a/b".into(),
                " ".into(),
                "\u{0}".into(),
                huge_string(rng, 2000),
            ];
            return rng.pick(&junk).clone();
        }
        if is_message && !self.message_ids.is_empty() && rng.percent(50) {
            return rng.pick(&self.message_ids).clone();
        }
        if parameter["name"] == "id"
            && !is_message
            && !self.tenant_ids.is_empty()
            && rng.percent(50)
        {
            return rng.pick(&self.tenant_ids).clone();
        }
        match schemas.valid(&parameter["schema"], rng, 0) {
            Value::String(s) => s,
            other => other.to_string(),
        }
    }

    fn path_is_message(&self, parameter: &Value) -> bool {
        parameter["description"]
            .as_str()
            .is_some_and(|d| d.contains("message id"))
    }

    fn query(&mut self, operation: &Operation, kind: Kind) -> String {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for parameter in operation.parameters("query") {
            if self.rng.percent(45) {
                let value = match self.schemas.valid(&parameter["schema"], &mut self.rng, 0) {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                pairs.push((parameter["name"].as_str().unwrap().to_string(), value));
            }
        }
        let mut raw_extra = String::new();
        if kind == Kind::Params {
            let names: Vec<String> = operation
                .parameters("query")
                .iter()
                .map(|p| p["name"].as_str().unwrap().to_string())
                .collect();
            let rng = &mut self.rng;
            match rng.below(7) {
                0 if !names.is_empty() => {
                    let name = rng.pick(&names).clone();
                    let schema = operation
                        .parameters("query")
                        .into_iter()
                        .find(|p| p["name"] == name.as_str())
                        .unwrap()["schema"]
                        .clone();
                    let wrong = match self.schemas.wrong(&schema, rng) {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    pairs.push((name, wrong));
                }
                1 => pairs.push(("unknown".into(), "1".into())),
                2 if !names.is_empty() => {
                    let name = rng.pick(&names).clone();
                    pairs.push((name.clone(), "1".into()));
                    pairs.push((name, "2".into()));
                }
                3 => {
                    raw_extra = rng
                        .pick(&["%zz", "%", "&&&", "=", "a", "%FF=%FE", "x=%00"])
                        .to_string()
                }
                4 => pairs.push(("limit".into(), huge_string(rng, 3000))),
                5 => pairs.push(("é€".into(), "😀".into())),
                _ => pairs.push(("cursor".into(), "0".into())),
            }
        }
        let mut query: Vec<String> = pairs
            .iter()
            .map(|(n, v)| format!("{}={}", encode(n), encode(v)))
            .collect();
        if !raw_extra.is_empty() {
            query.push(raw_extra);
        }
        if query.is_empty() {
            String::new()
        } else {
            format!("?{}", query.join("&"))
        }
    }

    /// The body of a case, as bytes.
    fn body(&mut self, operation: &Operation, kind: Kind) -> Option<Vec<u8>> {
        let schema = operation.body_schema();
        if schema.is_none() && !matches!(kind, Kind::BadBody | Kind::InvalidJson) {
            return None;
        }
        let mut valid = schema.map(|s| self.schemas.valid(s, &mut self.rng, 0));
        if kind == Kind::Valid && self.rng.percent(80) {
            // Mostly without `callback_url`: this setup has no webhook
            // secret, so a message with one is refused (by design).
            if let Some(Value::Object(object)) = &mut valid {
                object.remove("callback_url");
                for item in object
                    .get_mut("messages")
                    .and_then(Value::as_array_mut)
                    .into_iter()
                    .flatten()
                {
                    item.as_object_mut().map(|i| i.remove("callback_url"));
                }
            }
        }
        match kind {
            Kind::InvalidJson => Some(self.invalid_json(valid.as_ref())),
            Kind::BadBody => {
                let mut value = valid.unwrap_or(json!({}));
                self.mutate(schema, &mut value);
                Some(serde_json::to_vec(&value).unwrap())
            }
            _ => valid.map(|v| serde_json::to_vec(&v).unwrap()),
        }
    }

    /// Breaks the schema somewhere in `value`.
    fn mutate(&mut self, schema: Option<&Value>, value: &mut Value) {
        let schemas = self.schemas;
        // A batch: break the envelope, or an item.
        if let Some(items) = value.get_mut("messages").and_then(Value::as_array_mut) {
            match self.rng.below(7) {
                0 => *value = json!({"messages": []}),
                1 => {
                    let one = json!({"to": "4915100000001", "from": "ACME", "text": "x"});
                    *value = json!({ "messages": vec![one; 1001] });
                }
                2 => *value = json!({"messages": {"to": "1"}}),
                3 => *value = json!({"message": items.clone()}),
                // Over the 2 MiB limit of a batch.
                4 => *value = json!({"messages": [{"text": "a".repeat(2_100_000)}]}),
                _ => {
                    if let Some(item) = items.first_mut() {
                        let item_schema = schema
                            .map(|s| schemas.resolve(s)["properties"]["messages"]["items"].clone());
                        self.mutate(item_schema.as_ref(), item);
                    }
                }
            }
            return;
        }
        let resolved = schema.map(|s| schemas.resolve(s));
        let rng = &mut self.rng;
        let properties: Vec<(String, Value)> = resolved
            .and_then(|s| s["properties"].as_object())
            .map(|p| p.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        let Some(object) = value.as_object_mut() else {
            return;
        };
        match rng.below(9) {
            0 => {
                // A required field missing.
                let required: Vec<String> = resolved
                    .and_then(|s| s["required"].as_array())
                    .into_iter()
                    .flatten()
                    .filter_map(|r| r.as_str().map(str::to_string))
                    .collect();
                if !required.is_empty() {
                    object.remove(rng.pick(&required));
                }
            }
            1 => {
                object.insert("unexpected_field".into(), json!(1));
            }
            2 if !properties.is_empty() => {
                let (name, field) = rng.pick(&properties).clone();
                let wrong = schemas.wrong(&field, rng);
                object.insert(name, wrong);
            }
            3 if !properties.is_empty() => {
                let (name, _) = rng.pick(&properties).clone();
                object.insert(name, Value::Null);
            }
            4 if !properties.is_empty() => {
                // A huge string: over the body limit, or just long.
                let (name, _) = rng.pick(&properties).clone();
                let huge = match rng.below(3) {
                    0 => huge_string(rng, 1531),
                    1 => huge_string(rng, 5000),
                    _ => "a".repeat(70_000),
                };
                object.insert(name, Value::String(huge));
            }
            5 if !properties.is_empty() => {
                // Unicode and control characters.
                let (name, _) = rng.pick(&properties).clone();
                let n = rng.between(1, 40) as usize;
                let mut text = String::new();
                for _ in 0..n {
                    text.push(if rng.percent(50) {
                        char::from_u32(rng.between(0, 0x1f) as u32).unwrap()
                    } else {
                        text_char(rng)
                    });
                }
                object.insert(name, Value::String(text));
            }
            6 => {
                *value = rng
                    .pick(&[json!([]), json!("text"), json!(42), json!(null)])
                    .clone()
            }
            _ if !properties.is_empty() => {
                // Just past a bound.
                let (name, field) = rng.pick(&properties).clone();
                let field = schemas.resolve(&field).clone();
                let past = if let Some(max) = field["maxLength"].as_u64() {
                    Value::String("7".repeat(max as usize + 1))
                } else if let Some(max) = field["maximum"].as_i64() {
                    json!(max + 1)
                } else {
                    json!("")
                };
                object.insert(name, past);
            }
            _ => {}
        }
    }

    fn invalid_json(&mut self, valid: Option<&Value>) -> Vec<u8> {
        let rng = &mut self.rng;
        let text = valid.map(|v| v.to_string()).unwrap_or_else(|| "{}".into());
        match rng.below(14) {
            0 => Vec::new(),
            1 => text.as_bytes()[..rng.below(text.len())].to_vec(),
            2 => format!("{text}x").into_bytes(),
            3 => {
                let n = rng.between(1, 64) as usize;
                (0..n).map(|_| rng.next() as u8).collect()
            }
            4 => "[".repeat(5000).into_bytes(),
            5 => [b"\xef\xbb\xbf".as_slice(), text.as_bytes()].concat(),
            6 => br#"{"to":"4915100000001","to":49,"from":"ACME","text":"dup"}"#.to_vec(),
            7 => br#"{"to":"4915100000001","from":"ACME","text":"\ud800"}"#.to_vec(),
            8 => b"{'to': 'single quotes'}".to_vec(),
            9 => b"{\"to\": NaN}".to_vec(),
            10 => format!("{{\"to\": {}}}", "9".repeat(5000)).into_bytes(),
            11 => b"{\"text\": \"\xff\xfe invalid utf-8\"}".to_vec(),
            12 => b"null".to_vec(),
            _ => b"{\"messages\": [{\"to\": // comment\n}]}".to_vec(),
        }
    }

    fn auth(&mut self, operation: &Operation, request: &mut Request, kind: Kind) {
        let security = operation.security();
        let tenant = security.iter().any(|s| s == "bearer");
        let admin = security.iter().any(|s| s == "admin_token");
        let rng = &mut self.rng;
        if kind != Kind::Auth {
            if tenant {
                let key = if rng.percent(80) {
                    ACME.api_key
                } else {
                    BETA.api_key
                };
                if rng.percent(80) {
                    request.header("Authorization", format!("Bearer {key}"));
                } else {
                    request.header("X-Api-Key", key);
                }
            } else if admin && (kind == Kind::Valid || rng.percent(70)) {
                request.header("Authorization", format!("Bearer {ADMIN_TOKEN}"));
            }
            return;
        }
        let long_key = "k".repeat(4000);
        let variants: Vec<(&str, Vec<u8>)> = vec![
            ("Authorization", b"Bearer wrong-key".to_vec()),
            ("Authorization", b"Bearer".to_vec()),
            ("Authorization", b"Bearer ".to_vec()),
            ("Authorization", b"Basic YWNtZTpzZWNyZXQ=".to_vec()),
            (
                "Authorization",
                format!("bearer {}", ACME.api_key).into_bytes(),
            ),
            (
                "Authorization",
                format!("Bearer  {} ", ACME.api_key).into_bytes(),
            ),
            (
                "Authorization",
                format!("Bearer {ADMIN_TOKEN}").into_bytes(),
            ),
            (
                "Authorization",
                format!("Bearer {}", ACME.api_key.to_uppercase()).into_bytes(),
            ),
            ("Authorization", b"Bearer \xff\xfe\xfd".to_vec()),
            ("Authorization", format!("Bearer {long_key}").into_bytes()),
            ("X-Api-Key", b"".to_vec()),
            ("X-Api-Key", b"wrong".to_vec()),
            ("X-Api-Key", ADMIN_TOKEN.as_bytes().to_vec()),
            ("X-Api-Key", b"\xe9t\xe9".to_vec()),
        ];
        if rng.percent(85) {
            let (name, value) = rng.pick(&variants).clone();
            request.header(name, value);
        }
    }

    fn case(&mut self, operation: &Operation) -> (Request, Kind) {
        let kind = kind(&mut self.rng);
        let mut path = operation.path.to_string();
        // A channel of a tenant the fuzzer made, for `{id}` and `{name}`
        // together (half the time, when there is one).
        let known_channel = (path.contains("{name}")
            && kind != Kind::Params
            && !self.channels.is_empty()
            && self.rng.percent(50))
        .then(|| self.rng.pick(&self.channels).clone());
        for parameter in operation.parameters("path") {
            let name = parameter["name"].as_str().unwrap();
            let mut value = match (&known_channel, name) {
                (Some((tenant, _)), "id") => tenant.clone(),
                (Some((_, channel)), "name") => channel.clone(),
                _ => self.path_value(parameter, kind),
            };
            if value.is_empty() {
                value = "x".into();
            }
            path = path.replace(&format!("{{{name}}}"), &encode(&value));
        }
        let mut method = operation.method.to_uppercase();
        match kind {
            Kind::WrongMethod => {
                let others: Vec<&str> = ["GET", "POST", "PUT", "DELETE", "PATCH", "TRACE"]
                    .into_iter()
                    .filter(|m| !operation.allowed.iter().any(|a| a == m))
                    .collect();
                method = self.rng.pick(&others).to_string();
            }
            Kind::UnknownPath => {
                let suffix = *self.rng.pick(SUFFIXES);
                path.push_str(suffix);
            }
            _ => {}
        }
        let query = self.query(operation, kind);
        let mut request = Request::new(&method, format!("{path}{query}"));
        self.auth(operation, &mut request, kind);
        let body = self.body(operation, kind);
        let has_body = body.is_some();
        request.body = body;
        if has_body {
            let content_type = if kind == Kind::ContentType {
                *self.rng.pick(CONTENT_TYPES)
            } else {
                b"application/json"
            };
            if !content_type.is_empty() {
                request.header("Content-Type", content_type);
            }
        }
        if !operation.parameters("header").is_empty() {
            self.idempotency_key(&mut request, kind);
        }
        if kind == Kind::Headers {
            let (name, value): (&str, &[u8]) = *self.rng.pick(&[
                ("Accept", b"application/xml".as_slice()),
                ("Accept-Encoding", b"gzip, br, zstd"),
                ("X-Fuzz", b"\x80\x81\xfe obs-text"),
                ("Content-Encoding", b"gzip"),
                ("Expect", b"100-continue"),
                ("Cookie", b"a=b"),
            ]);
            request.header(name, value);
        }
        (request, kind)
    }

    fn idempotency_key(&mut self, request: &mut Request, kind: Kind) {
        let rng = &mut self.rng;
        if kind == Kind::Headers || (kind == Kind::Params && rng.percent(50)) {
            let bad: Vec<Vec<u8>> = vec![
                b"".to_vec(),
                b"has space".to_vec(),
                vec![b'k'; 256],
                b"\xe9\xe8".to_vec(),
                b"\ttab".to_vec(),
            ];
            request.header("Idempotency-Key", rng.pick(&bad).clone());
        } else if rng.percent(40) {
            let n = rng.length(1, 255);
            let key: Vec<u8> = (0..n).map(|_| rng.between(0x21, 0x7e) as u8).collect();
            request.header("Idempotency-Key", key);
        } else if rng.percent(15) {
            // A key reused: a replay, or 422 with another body.
            request.header(
                "Idempotency-Key",
                *rng.pick(&[b"fixed-1".as_slice(), b"fixed-2"]),
            );
        }
    }

    /// Every way the answer breaks the rules, for a request of `kind` on
    /// `operation`.
    fn check(
        &mut self,
        operation: &Operation,
        kind: Kind,
        request: &Request,
        response: &Response,
    ) -> Vec<String> {
        let mut problems = Vec::new();
        let status = response.status;
        // `/ready` answers 503 `{"ready": false}` while a channel has no
        // bound session (the fuzzer's own tenants point at made-up hosts):
        // its answer, not a server error.
        let not_ready = operation.path == "/ready" && status == 503;
        if status >= 500 && !not_ready {
            problems.push(format!("a server error: {status}"));
        }
        if (400..500).contains(&status) {
            self.check_problem(response, &mut problems);
        }
        if kind == Kind::Valid {
            accepted_when_valid(operation, request, response, &mut problems);
        }
        match kind {
            Kind::WrongMethod => {
                if status != 405 {
                    problems.push(format!("a wrong method answered {status}, not 405"));
                }
                if response.header("allow") != Some(operation.allowed.join(", ").as_str()) {
                    problems.push(format!(
                        "Allow is {:?}, the document says {:?}",
                        response.header("allow"),
                        operation.allowed
                    ));
                }
                return problems;
            }
            Kind::UnknownPath => {
                // 405 when the longer path is another route's; 401 when it
                // is an operator route with an `{id}` (`/admin/v1/tenants/..`)
                // and the request has no admin token.
                if status != 404 && status != 405 && status != 401 {
                    problems.push(format!("an unknown path answered {status}"));
                }
                return problems;
            }
            _ => {}
        }
        let Some(documented) = operation.spec["responses"].get(status.to_string()) else {
            problems.push(format!(
                "status {status} is not documented for {}",
                operation.name()
            ));
            return problems;
        };
        let content_type = response.content_type();
        let media = content_type.split(';').next().unwrap_or("").trim();
        let content = documented["content"].as_object();
        let Some((_, spec)) = content
            .into_iter()
            .flatten()
            .find(|(documented, _)| documented.split(';').next() == Some(media))
        else {
            if content.is_some_and(|c| !c.is_empty()) {
                problems.push(format!(
                    "content type {content_type:?} is not documented for {status}"
                ));
            }
            return problems;
        };
        if media.ends_with("json") {
            match serde_json::from_slice::<Value>(&response.body) {
                Ok(body) => {
                    self.schemas
                        .validate(&spec["schema"], &body, "body", true, &mut problems)
                }
                Err(e) => problems.push(format!("the body is not JSON: {e}")),
            }
            if let Ok(body) = serde_json::from_slice::<Value>(&response.body) {
                self.remember_ids(&body);
                if status == 201 && operation.path == "/admin/v1/tenants" {
                    self.remember_tenant(&body);
                }
            }
        }
        problems
    }

    fn check_problem(&self, response: &Response, problems: &mut Vec<String>) {
        let status = response.status;
        if response.content_type() != "application/problem+json" {
            problems.push(format!(
                "a {status} with content type {:?}, not application/problem+json",
                response.content_type()
            ));
        }
        match serde_json::from_slice::<Value>(&response.body) {
            Ok(body) => {
                let kind = body["type"].as_str().unwrap_or("");
                if !self.schemas.problem_types.iter().any(|t| t == kind) {
                    problems.push(format!(
                        "a problem type {:?} not in the document",
                        body["type"]
                    ));
                }
                if body["status"] != status {
                    problems.push(format!("the problem says status {}", body["status"]));
                }
                let schema = json!({"$ref": "#/components/schemas/Problem"});
                self.schemas
                    .validate(&schema, &body, "problem", true, problems);
            }
            Err(e) => problems.push(format!("a {status} whose body is not JSON: {e}")),
        }
        let required_header = match status {
            401 => Some("www-authenticate"),
            405 => Some("allow"),
            429 => Some("retry-after"),
            _ => None,
        };
        if let Some(name) = required_header {
            if response.header(name).is_none() {
                problems.push(format!("a {status} without {name}"));
            }
        }
    }

    fn remember_tenant(&mut self, body: &Value) {
        let Some(id) = body["tenant"]["id"].as_str() else {
            return;
        };
        self.tenant_ids.push(id.to_string());
        for channel in body["tenant"]["channels"].as_array().into_iter().flatten() {
            if let Some(name) = channel["name"].as_str() {
                self.channels.push((id.to_string(), name.to_string()));
            }
        }
        if self.tenant_ids.len() > LIVE_TENANTS {
            let oldest = self.tenant_ids.remove(0);
            self.channels.retain(|(tenant, _)| *tenant != oldest);
            let mut request = Request::new("DELETE", format!("/admin/v1/tenants/{oldest}"));
            request.header("Authorization", format!("Bearer {ADMIN_TOKEN}"));
            // Its answer is checked like any other delete's: by the
            // operation's own cases.
            let _ = send(self.addr, &request);
        }
    }

    fn remember_ids(&mut self, body: &Value) {
        let mut ids: Vec<&Value> = vec![&body["id"]];
        ids.extend(
            body["results"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| &r["id"]),
        );
        ids.extend(
            body["messages"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|m| &m["id"]),
        );
        for id in ids.into_iter().filter_map(Value::as_str) {
            if id.len() == 16
                && self.message_ids.len() < 500
                && !self.message_ids.iter().any(|i| i == id)
            {
                self.message_ids.push(id.to_string());
            }
        }
    }
}

/// The fields whose limits JSON Schema cannot state, so that a request
/// the schema accepts may still be refused naming them: the 10-part limit
/// of `text` (it depends on the alphabet), `encoding: "gsm"` with a text
/// outside GSM 03.38, a `validity` time past or over a year ahead, and a
/// `callback_url` without the tenant's `webhook_secret`.
const SEMANTIC_FIELDS: [&str; 14] = [
    "text",
    "encoding",
    "validity",
    "send_at",
    "callback_url",
    // The operator API: `webhook_url` needs `webhook_secret`, `credit`
    // needs `price_per_part`, a channel `name` is unique and cannot
    // change, and `error_classes` keys are command_status values.
    "webhook_secret",
    "credit",
    "name",
    "error_classes",
    // A tenant's senders must each be a phone number or a short name.
    "allowed_senders",
    // A channel's TLS files must be readable PEM on the appliance, the
    // `tls_*` keys need `tls = true`, and the name checked (the host by
    // default) must be a DNS name or an IP address.
    "tls_ca_file",
    "tls_server_name",
    "tls_cert_file",
    "tls_key_file",
];

/// Optional fields a valid request never gets from the generator: a
/// channel's TLS files (paths on the appliance, which a generated string
/// never names) and the name checked, all of which need `tls = true`.
/// Mutated requests still send them.
const NOT_GENERATED: [&str; 4] = [
    "tls_ca_file",
    "tls_server_name",
    "tls_cert_file",
    "tls_key_file",
];

/// Problems of a batch item, or of a message, that depend on the tenant's
/// state, not on the request: its credit, queue and accept rate.
const STATE_PROBLEMS: [&str; 4] = [
    "urn:smppd:problem:insufficient-credit",
    "urn:smppd:problem:queue-full",
    "urn:smppd:problem:rate-limited",
    // An id, a channel name or an API key already taken.
    "urn:smppd:problem:conflict",
];

/// A refusal of a schema-valid message is for a semantic field or the
/// tenant's state.
fn refusal_allowed(problem: &Value) -> bool {
    let field = problem["field"].as_str().unwrap_or("");
    let field = field.rsplit('.').next().unwrap_or(field);
    STATE_PROBLEMS.contains(&problem["type"].as_str().unwrap_or(""))
        || (problem["type"] == "urn:smppd:problem:invalid-field"
            && SEMANTIC_FIELDS.contains(&field))
}

/// A request valid per the document is accepted: a 2xx, or a refusal
/// the document cannot rule out (an id that does not exist, the tenant's
/// credit, queue or rate, an idempotency key used before with another
/// body, a semantic field).
fn accepted_when_valid(
    operation: &Operation,
    request: &Request,
    response: &Response,
    problems: &mut Vec<String>,
) {
    let body: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
    let has_key = request.headers.iter().any(|(n, _)| n == "Idempotency-Key");
    let allowed = match response.status {
        200..=299 => true,
        404 => !operation.parameters("path").is_empty(),
        422 => has_key,
        400 | 402 | 409 | 429 => refusal_allowed(&body),
        503 => operation.path == "/ready",
        _ => false,
    };
    if !allowed {
        problems.push(format!(
            "a valid request was refused with {}",
            response.status
        ));
    }
    for item in body["results"].as_array().into_iter().flatten() {
        if !item["error"].is_null() && !refusal_allowed(&item["error"]) {
            problems.push(format!("a valid batch item was refused: {}", item["error"]));
        }
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => {
            let v = v.trim();
            let parsed = match v.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => v.parse(),
            };
            parsed.unwrap_or_else(|_| panic!("{name}={v} is not a number"))
        }
        Err(_) => default,
    }
}

#[test]
fn no_request_generated_from_the_openapi_document_gets_a_5xx_or_a_bad_answer() {
    let seed = env_number("FUZZ_SEED", DEFAULT_SEED);
    let cases = env_number("FUZZ_CASES", DEFAULT_CASES as u64) as usize;
    println!("fuzzing with FUZZ_SEED={seed:#x} FUZZ_CASES={cases}");

    let sim = simulator(&[ACME, BETA], Faults::default());
    let (_dir, db) = temp_db();
    let port = sim.local_addr().port();
    // No webhook_secret anywhere: a generated callback_url is refused, so
    // nothing is ever sent to a generated address.
    let config = format!(
        "[http]\nadmin_token = \"{ADMIN_TOKEN}\"\n{}{}",
        config_text(&db, port, &[ACME], ""),
        tenant_text(
            port,
            &BETA,
            "price_per_part = 0.05\ncredit = 0.5\nmax_in_flight = 3\nmax_accept_rate = 20.0",
            ""
        )
    );
    let engine = TestEngine::start(&config);
    wait_for_binds(&sim, 2);
    let addr = engine.addr;

    let document =
        send(addr, &Request::new("GET", "/openapi.json".into())).expect("GET /openapi.json");
    assert_eq!(document.status, 200);
    let schemas = Schemas::new(serde_json::from_slice(&document.body).expect("JSON"));
    let mut operations = Vec::new();
    for (path, item) in schemas.root["paths"].as_object().unwrap() {
        let allowed: Vec<String> = ["get", "put", "post", "delete", "patch"]
            .into_iter()
            .filter(|m| item.get(*m).is_some())
            .map(str::to_uppercase)
            .collect();
        for method in ["get", "put", "post", "delete", "patch"] {
            if let Some(spec) = item.get(method) {
                operations.push(Operation {
                    method,
                    path,
                    spec,
                    allowed: allowed.clone(),
                });
            }
        }
    }
    assert!(
        operations.len() >= 14,
        "only {} operations",
        operations.len()
    );

    let mut fuzzer = Fuzzer {
        schemas: &schemas,
        rng: Rng(seed),
        addr,
        message_ids: Vec::new(),
        tenant_ids: Vec::new(),
        channels: Vec::new(),
    };
    let started = Instant::now();
    let mut failures = Vec::new();
    let mut tally: BTreeMap<String, BTreeMap<u16, usize>> = BTreeMap::new();
    // Round-robin, so later operations see the data earlier ones made.
    for round in 0..cases {
        for operation in &operations {
            let (request, kind) = fuzzer.case(operation);
            let outcome = send(fuzzer.addr, &request);
            let problems = match &outcome {
                Ok(response) => fuzzer.check(operation, kind, &request, response),
                Err(e) => vec![format!("no answer: {e}")],
            };
            if let Ok(response) = &outcome {
                *tally
                    .entry(operation.name())
                    .or_default()
                    .entry(response.status)
                    .or_default() += 1;
            }
            if !problems.is_empty() && failures.len() < 25 {
                failures.push(format!(
                    "--- case {round} of {} ({kind:?}):\n{}\n=> {}\n{}",
                    operation.name(),
                    request.describe(),
                    problems.join("\n   "),
                    outcome.map(|r| r.describe()).unwrap_or_default()
                ));
            }
        }
    }
    println!(
        "{} requests in {:.1?}",
        cases * operations.len(),
        started.elapsed()
    );
    for (operation, statuses) in &tally {
        println!("{operation:45} {statuses:?}");
    }
    assert!(
        failures.is_empty(),
        "{} failing requests (FUZZ_SEED={seed:#x} FUZZ_CASES={cases} reproduces the run):\n{}",
        failures.len(),
        failures.join("\n")
    );
    // The generator reaches the handlers' success paths (a replay needs a
    // dead letter, which this setup never makes).
    for operation in &operations {
        let name = operation.name();
        if name.contains("/replay") {
            continue;
        }
        let successes: usize = tally
            .get(&name)
            .map(|s| s.iter().filter(|(st, _)| **st < 300).map(|(_, n)| n).sum())
            .unwrap_or(0);
        assert!(
            successes > 0,
            "{name} never answered 2xx: {:?}",
            tally.get(&name)
        );
    }
    drop(engine);
}
