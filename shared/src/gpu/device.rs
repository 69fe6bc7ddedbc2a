//! Opening a GPU and compiling the ranking kernels: one adapter, one device with the adapter's own
//! buffer limits, one bind-group layout that both kernels of `rank.wgsl` share.

use super::{GpuError, Storage};

const SHADER: &str = include_str!("rank.wgsl");

/// An open device with its limits.
pub struct Device {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub limits: wgpu::Limits,
    pub adapter_name: String,
}

/// The two kernels of a ranking pass and the layout of the buffers they read.
pub struct Pipelines {
    pub bind_layout: wgpu::BindGroupLayout,
    pub score: wgpu::ComputePipeline,
    pub select: wgpu::ComputePipeline,
}

/// The high-performance adapter, with a device that may bind buffers as large as it allows.
pub async fn open() -> Result<Device, GpuError> {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapter = instance
        .request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            force_fallback_adapter: false,
            compatible_surface: None,
            ..Default::default()
        })
        .await
        .map_err(|e| GpuError::NoAdapter(e.to_string()))?;
    let adapter_name = adapter.get_info().name;
    let limits = adapter.limits();
    let (device, queue) = adapter
        .request_device(&wgpu::DeviceDescriptor {
            label: Some("nook"),
            required_features: wgpu::Features::empty(),
            required_limits: wgpu::Limits {
                max_storage_buffer_binding_size: limits.max_storage_buffer_binding_size,
                max_buffer_size: limits.max_buffer_size,
                ..wgpu::Limits::default()
            },
            ..Default::default()
        })
        .await
        .map_err(|e| GpuError::Device(e.to_string()))?;
    Ok(Device { device, queue, limits, adapter_name })
}

/// Compiles the scoring kernel for `storage` and the selection kernel. Binding 0 is the uniform
/// parameters, 1–5 are read-only tables and inputs, 6–7 the scores and candidates written.
pub fn pipelines(device: &wgpu::Device, storage: Storage) -> Pipelines {
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("rank.wgsl"),
        source: wgpu::ShaderSource::Wgsl(SHADER.into()),
    });
    let entry = |binding: u32, ty: wgpu::BufferBindingType| wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer { ty, has_dynamic_offset: false, min_binding_size: None },
        count: None,
    };
    let mut entries = vec![entry(0, wgpu::BufferBindingType::Uniform)];
    entries.extend((1..=5).map(|b| entry(b, wgpu::BufferBindingType::Storage { read_only: true })));
    entries.extend((6..=7).map(|b| entry(b, wgpu::BufferBindingType::Storage { read_only: false })));
    let bind_layout =
        device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor { label: Some("rank"), entries: &entries });
    let layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some("rank"),
        bind_group_layouts: &[Some(&bind_layout)],
        immediate_size: 0,
    });
    let pipeline = |entry: &str| {
        device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(entry),
            layout: Some(&layout),
            module: &module,
            entry_point: Some(entry),
            compilation_options: Default::default(),
            cache: None,
        })
    };
    let score = pipeline(match storage {
        Storage::Int8 => "score_int8",
        Storage::F32 => "score_f32",
    });
    Pipelines { score, select: pipeline("select_top"), bind_layout }
}
