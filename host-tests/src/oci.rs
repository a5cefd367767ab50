//! `rheostat oci`: the filter module as an OCI image layout (a directory
//! with `oci-layout`, `index.json` and `blobs/sha256/…`) that Istio and
//! Envoy Gateway can pull once it is copied to a registry — written without
//! Docker, byte-for-byte reproducible from the same module.
//!
//! # Two images, one layout
//!
//! Wasm images come in two shapes, and the pullers accept both (Istio
//! `pkg/wasm/imagefetcher.go`, whose copy Envoy Gateway ships as
//! `internal/wasm/imagefetcher.go`; the shapes are the solo-io Wasm image
//! spec, `solo-io/wasm` `spec/spec.md` and `spec/spec-compat.md`):
//!
//! - **`oci`** — custom artifact media types. The pullers look for a layer of
//!   type `application/vnd.module.wasm.content.layer.v1+wasm` holding the raw
//!   module, and *require exactly two layers*: the spec bundles the runtime
//!   configuration (`application/vnd.module.wasm.config.v1+json`) as a layer
//!   beside the module. A one-layer image is rejected ("number of layers must
//!   be 2"), so this writer emits both. The module comes first, because
//!   Envoy's own OCI data source (`source/extensions/common/wasm/oci/`)
//!   fetches `layers[0]` and loads it as the module.
//! - **`compat`** — standard media types, so `docker`, `crane`, `skopeo` and
//!   every registry treat it as an ordinary image: one
//!   `application/vnd.oci.image.layer.v1.tar+gzip` layer whose tar has
//!   `plugin.wasm` (and, optionally, `runtime-config.json`) at its root, and
//!   the manifest annotation `module.wasm.image/variant: compat`, which the
//!   compat spec requires for the OCI layer type.
//!
//! `index.json` lists both manifests; `org.opencontainers.image.ref.name`
//! (`oci`, `compat`) is what `oras cp --from-oci-layout DIR:REF` and
//! `skopeo copy oci:DIR:REF` select by, and `module.wasm.image/variant` says
//! the same for people reading the index.
//!
//! # Reproducible
//!
//! JSON keys are sorted (serde_json's map), tar entries have mtime 0, uid and
//! gid 0 and mode 0644, and the gzip header carries no time or file name, so
//! the same module always gives the same digests — a CI can compare them.

use anyhow::{bail, Context as _, Result};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// The raw module layer of the *oci* variant.
pub const WASM_LAYER: &str = "application/vnd.module.wasm.content.layer.v1+wasm";
/// The runtime configuration of the *oci* variant (manifest config and second layer).
pub const WASM_CONFIG: &str = "application/vnd.module.wasm.config.v1+json";
/// The *compat* variant's single layer.
pub const OCI_LAYER_TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// The *compat* variant's image configuration.
pub const OCI_IMAGE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// An OCI image manifest (both variants).
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// The layout's `index.json`.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Annotation naming the variant (required on compat manifests by the compat spec).
pub const VARIANT: &str = "module.wasm.image/variant";
/// Annotation tools use as the tag of a manifest inside a layout.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Annotation naming a manifest's image or a layer's file.
pub const TITLE: &str = "org.opencontainers.image.title";
/// Annotation carrying the image version.
pub const VERSION: &str = "org.opencontainers.image.version";
/// The file the compat spec requires at the root of the layer.
pub const PLUGIN_FILE: &str = "plugin.wasm";
/// The runtime configuration's file name (the solo-io spec's).
pub const RUNTIME_CONFIG_FILE: &str = "runtime-config.json";
/// What `make oci` writes, relative to the workspace.
pub const DEFAULT_OUT: &str = "target/oci/rheostat-filter";

/// What to call the image.
#[derive(Debug, Clone)]
pub struct ImageInfo {
    /// `org.opencontainers.image.title` of both manifests.
    pub title: String,
    /// `org.opencontainers.image.version` of both manifests.
    pub version: String,
    /// The root id the runtime configuration advertises (the proxy-wasm
    /// `root_id` a WasmPlugin's `pluginName` / Envoy's `root_id` should use).
    pub root_id: String,
}

impl Default for ImageInfo {
    fn default() -> Self {
        ImageInfo {
            title: "rheostat-filter".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            root_id: "rheostat".into(),
        }
    }
}

/// One image written into the layout.
#[derive(Debug, Clone)]
pub struct ImageSummary {
    /// `oci` or `compat` (also its `ref.name`).
    pub variant: &'static str,
    /// `sha256:…` of the manifest: the digest a registry will report.
    pub manifest_digest: String,
    /// The layer that carries the module, and its size in bytes.
    pub layer_media_type: &'static str,
    pub layer_digest: String,
    pub layer_bytes: u64,
}

/// What `write_layout` produced.
#[derive(Debug, Clone)]
pub struct LayoutSummary {
    pub dir: PathBuf,
    pub images: Vec<ImageSummary>,
    /// Distinct blobs and their total size (the module appears once).
    pub blobs: usize,
    pub blob_bytes: u64,
}

/// Writes `wasm` as an OCI image layout into `dir` with both variants.
///
/// `dir` is created if missing. If it already holds a layout (an
/// `oci-layout` file), its blobs and index are replaced; a non-empty
/// directory that is not a layout is refused rather than emptied.
pub fn write_layout(wasm: &[u8], dir: &Path, info: &ImageInfo) -> Result<LayoutSummary> {
    if !wasm.starts_with(b"\0asm") {
        bail!("not a WebAssembly module (no \\0asm header): refusing to package it");
    }
    prepare_dir(dir)?;
    let mut blobs = Blobs::new(dir)?;

    // The runtime configuration of the solo-io spec: who the module is for.
    let runtime_config = to_bytes(&json!({
        "type": "envoy_proxy",
        "abiVersions": ["proxy_abi_version_0_2_1"],
        "config": { "root_ids": [info.root_id] },
    }))?;
    let annotations = json!({ TITLE: info.title, VERSION: info.version });

    // *oci* variant: module layer first (Envoy's own fetcher reads layers[0]),
    // runtime configuration as the second layer the pullers require.
    let module = blobs.put(WASM_LAYER, wasm, Some(PLUGIN_FILE))?;
    let config = blobs.put(WASM_CONFIG, &runtime_config, None)?;
    let config_layer = blobs.put(WASM_CONFIG, &runtime_config, Some(RUNTIME_CONFIG_FILE))?;
    let oci_manifest = to_bytes(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config,
        "layers": [module, config_layer],
        "annotations": annotations,
    }))?;
    let oci = blobs.put(OCI_MANIFEST, &oci_manifest, None)?;

    // *compat* variant: one tar.gz layer with plugin.wasm at its root.
    let tar = tar_files(&[(PLUGIN_FILE, wasm), (RUNTIME_CONFIG_FILE, &runtime_config)])?;
    let layer_gz = gzip(&tar)?;
    let layer = blobs.put(OCI_LAYER_TAR_GZIP, &layer_gz, None)?;
    let image_config = to_bytes(&json!({
        // The module is the payload, not a Linux program: wasip1/wasm is the
        // platform Docker's Wasm support uses, so no runtime mistakes it for
        // something it can start as a container.
        "architecture": "wasm",
        "os": "wasip1",
        "rootfs": { "type": "layers", "diff_ids": [sha256_digest(&tar)] },
    }))?;
    let image_config = blobs.put(OCI_IMAGE_CONFIG, &image_config, None)?;
    let mut compat_annotations = annotations.clone();
    compat_annotations[VARIANT] = json!("compat");
    let compat_manifest = to_bytes(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": image_config,
        "layers": [layer],
        "annotations": compat_annotations,
    }))?;
    let compat = blobs.put(OCI_MANIFEST, &compat_manifest, None)?;

    let index = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            with_annotations(&oci, json!({ REF_NAME: "oci", VARIANT: "oci" })),
            with_annotations(&compat, json!({ REF_NAME: "compat", VARIANT: "compat" })),
        ],
    });
    write_file(&dir.join("index.json"), &to_bytes(&index)?)?;
    write_file(
        &dir.join("oci-layout"),
        &to_bytes(&json!({ "imageLayoutVersion": "1.0.0" }))?,
    )?;

    let digest = |d: &Value| d["digest"].as_str().unwrap_or_default().to_string();
    let size = |d: &Value| d["size"].as_u64().unwrap_or_default();
    Ok(LayoutSummary {
        dir: dir.to_path_buf(),
        images: vec![
            ImageSummary {
                variant: "oci",
                manifest_digest: digest(&oci),
                layer_media_type: WASM_LAYER,
                layer_digest: digest(&module),
                layer_bytes: size(&module),
            },
            ImageSummary {
                variant: "compat",
                manifest_digest: digest(&compat),
                layer_media_type: OCI_LAYER_TAR_GZIP,
                layer_digest: digest(&layer),
                layer_bytes: size(&layer),
            },
        ],
        blobs: blobs.count,
        blob_bytes: blobs.bytes,
    })
}

/// `rheostat oci`: packages `module` (default: the one `make build` makes)
/// into `out` and prints what it wrote.
pub fn main(
    module: Option<&Path>,
    out: &Path,
    tag: Option<String>,
) -> Result<std::process::ExitCode> {
    let module = crate::replay::resolve_module(module)?;
    let wasm =
        std::fs::read(&module).with_context(|| format!("cannot read {}", module.display()))?;
    let mut info = ImageInfo::default();
    if let Some(tag) = tag {
        info.version = tag;
    }
    let summary = write_layout(&wasm, out, &info)?;
    print!("{}", report(&summary));
    Ok(std::process::ExitCode::SUCCESS)
}

/// `sha256:<hex>` of `bytes`, the digest form OCI descriptors use.
pub fn sha256_digest(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    for b in hash {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// One line per image, then how to push it: what `rheostat oci` prints.
pub fn report(summary: &LayoutSummary) -> String {
    let dir = summary.dir.display();
    let mut out = format!(
        "wrote OCI image layout {dir}: {} images, {} blobs, {} bytes\n",
        summary.images.len(),
        summary.blobs,
        summary.blob_bytes
    );
    for image in &summary.images {
        out.push_str(&format!(
            "  {:<7} manifest {}  layer {} ({} bytes, {})\n",
            image.variant,
            image.manifest_digest,
            image.layer_digest,
            image.layer_bytes,
            image.layer_media_type
        ));
    }
    out.push_str(&format!(
        "push with e.g.: oras cp --from-oci-layout {dir}:compat REGISTRY/rheostat-filter:TAG\n"
    ));
    out
}

/// Makes `dir` ready for a fresh layout without deleting anything that is
/// not one.
fn prepare_dir(dir: &Path) -> Result<()> {
    if dir.join("oci-layout").is_file() {
        let blobs = dir.join("blobs");
        if blobs.exists() {
            std::fs::remove_dir_all(&blobs)
                .with_context(|| format!("cannot clear old blobs in {}", blobs.display()))?;
        }
    } else if dir.is_dir()
        && std::fs::read_dir(dir)
            .with_context(|| format!("cannot read {}", dir.display()))?
            .next()
            .is_some()
    {
        bail!(
            "{} is not empty and holds no OCI layout: choose an empty or new directory",
            dir.display()
        );
    }
    std::fs::create_dir_all(dir.join("blobs").join("sha256"))
        .with_context(|| format!("cannot create {}", dir.display()))
}

/// Content-addressed blob store of one layout.
struct Blobs {
    dir: PathBuf,
    count: usize,
    bytes: u64,
}

impl Blobs {
    fn new(layout: &Path) -> Result<Blobs> {
        Ok(Blobs {
            dir: layout.join("blobs").join("sha256"),
            count: 0,
            bytes: 0,
        })
    }

    /// Stores `bytes` (once per digest) and returns its descriptor.
    fn put(&mut self, media_type: &str, bytes: &[u8], title: Option<&str>) -> Result<Value> {
        let digest = sha256_digest(bytes);
        let path = self.dir.join(&digest["sha256:".len()..]);
        if !path.exists() {
            write_file(&path, bytes)?;
            self.count += 1;
            self.bytes += bytes.len() as u64;
        }
        let mut descriptor = json!({
            "mediaType": media_type,
            "digest": digest,
            "size": bytes.len(),
        });
        if let Some(title) = title {
            descriptor["annotations"] = json!({ TITLE: title });
        }
        Ok(descriptor)
    }
}

fn with_annotations(descriptor: &Value, annotations: Value) -> Value {
    let mut d = descriptor.clone();
    d["annotations"] = annotations;
    d
}

fn to_bytes(value: &Value) -> Result<Vec<u8>> {
    serde_json::to_vec(value).context("cannot serialise OCI JSON")
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

/// A ustar archive of regular files with fixed metadata, so its bytes
/// depend on the contents only.
fn tar_files(files: &[(&str, &[u8])]) -> Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        builder
            .append_data(&mut header, name, *data)
            .with_context(|| format!("cannot add {name} to the layer"))?;
    }
    builder
        .into_inner()
        .context("cannot finish the layer's tar")
}

/// gzip with no file name and mtime 0 in the header (flate2's defaults).
fn gzip(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut encoder = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).context("cannot gzip the layer")?;
    encoder.finish().context("cannot gzip the layer")
}
