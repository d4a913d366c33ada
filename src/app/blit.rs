//! The frame blit: uploads an RGB frame to a wgpu texture and draws it with `shaders/blit.wgsl`,
//! scaled by the largest whole factor that fits and centred (letterboxed) in its area.
//!
//! Integer scaling with a nearest sampler keeps every model pixel a crisp square; the viewport
//! does the placement, so the shader stays a single full-screen triangle.

/// A rectangle in target pixels: where one frame is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

impl Rect {
    /// The largest whole-number scaling of a `frame_w × frame_h` frame that fits in `area`,
    /// centred in it. Areas smaller than the frame still get a 1× frame, clipped by the caller.
    pub fn letterbox(area: Rect, frame_w: u32, frame_h: u32) -> Rect {
        let scale = (area.width / frame_w).min(area.height / frame_h).max(1);
        let (width, height) = (frame_w * scale, frame_h * scale);
        Rect {
            x: area.x + area.width.saturating_sub(width) / 2,
            y: area.y + area.height.saturating_sub(height) / 2,
            width,
            height,
        }
    }

    /// Splits `self` into `n` equal columns (the last takes any remainder).
    pub fn columns(self, n: u32) -> Vec<Rect> {
        let n = n.max(1);
        let w = self.width / n;
        (0..n)
            .map(|i| Rect {
                x: self.x + i * w,
                y: self.y,
                width: if i + 1 == n { self.width - i * w } else { w },
                height: self.height,
            })
            .collect()
    }
}

/// Begins a render pass on `view`, cleared to black (the letterbox bars).
pub fn clear_pass<'e>(
    encoder: &'e mut wgpu::CommandEncoder,
    view: &wgpu::TextureView,
    label: &str,
) -> wgpu::RenderPass<'e> {
    encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
        label: Some(label),
        color_attachments: &[Some(wgpu::RenderPassColorAttachment {
            view,
            depth_slice: None,
            resolve_target: None,
            ops: wgpu::Operations {
                load: wgpu::LoadOp::Clear(wgpu::Color::BLACK),
                store: wgpu::StoreOp::Store,
            },
        })],
        ..Default::default()
    })
}

/// Draws each frame letterboxed in its own column of `area`, side by side.
pub fn draw_columns(pass: &mut wgpu::RenderPass<'_>, blits: &[Blit], area: Rect) {
    for (blit, column) in blits.iter().zip(area.columns(blits.len() as u32)) {
        blit.draw(pass, column);
    }
}

/// One frame's texture plus the pipeline that draws it.
pub struct Blit {
    pipeline: wgpu::RenderPipeline,
    texture: wgpu::Texture,
    bind_group: wgpu::BindGroup,
    frame_w: u32,
    frame_h: u32,
    rgba: Vec<u8>,
}

impl Blit {
    /// `target_format` is the format of the surface or texture drawn into. The frame texture
    /// matches its sRGB-ness, so stored sRGB bytes reach the screen unchanged.
    pub fn new(
        device: &wgpu::Device,
        target_format: wgpu::TextureFormat,
        frame_w: u32,
        frame_h: u32,
    ) -> Self {
        let shader = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("blit.wgsl"),
            source: wgpu::ShaderSource::Wgsl(include_str!("../../shaders/blit.wgsl").into()),
        });
        let texture_format = if target_format.is_srgb() {
            wgpu::TextureFormat::Rgba8UnormSrgb
        } else {
            wgpu::TextureFormat::Rgba8Unorm
        };
        let texture = device.create_texture(&wgpu::TextureDescriptor {
            label: Some("frame"),
            size: wgpu::Extent3d {
                width: frame_w,
                height: frame_h,
                depth_or_array_layers: 1,
            },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: texture_format,
            usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
            view_formats: &[],
        });
        let sampler = device.create_sampler(&wgpu::SamplerDescriptor {
            label: Some("nearest"),
            mag_filter: wgpu::FilterMode::Nearest,
            min_filter: wgpu::FilterMode::Nearest,
            ..Default::default()
        });
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("blit"),
            entries: &[
                wgpu::BindGroupLayoutEntry {
                    binding: 0,
                    visibility: wgpu::ShaderStages::FRAGMENT,
                    ty: wgpu::BindingType::Texture {
                        sample_type: wgpu::TextureSampleType::Float { filterable: true },
                        view_dimension: wgpu::TextureViewDimension::D2,
                        multisampled: false,
                    },
                    count: None,
                },
                wgpu::BindGroupLayoutEntry {
                    binding: 1,
                    visibility: wgpu::ShaderStages::FRAGMENT,
                    ty: wgpu::BindingType::Sampler(wgpu::SamplerBindingType::Filtering),
                    count: None,
                },
            ],
        });
        let view = texture.create_view(&wgpu::TextureViewDescriptor::default());
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("blit"),
            layout: &layout,
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: wgpu::BindingResource::TextureView(&view),
                },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: wgpu::BindingResource::Sampler(&sampler),
                },
            ],
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("blit"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipeline = device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
            label: Some("blit"),
            layout: Some(&pipeline_layout),
            vertex: wgpu::VertexState {
                module: &shader,
                entry_point: Some("vs_main"),
                compilation_options: Default::default(),
                buffers: &[],
            },
            primitive: wgpu::PrimitiveState::default(),
            depth_stencil: None,
            multisample: wgpu::MultisampleState::default(),
            fragment: Some(wgpu::FragmentState {
                module: &shader,
                entry_point: Some("fs_main"),
                compilation_options: Default::default(),
                targets: &[Some(wgpu::ColorTargetState {
                    format: target_format,
                    blend: None,
                    write_mask: wgpu::ColorWrites::ALL,
                })],
            }),
            multiview_mask: None,
            cache: None,
        });
        Self {
            pipeline,
            texture,
            bind_group,
            frame_w,
            frame_h,
            rgba: vec![255; (frame_w * frame_h * 4) as usize],
        }
    }

    /// Uploads an RGB frame (`frame_w × frame_h × 3` bytes, row-major).
    ///
    /// # Panics
    /// If `rgb` has the wrong length: frames come from the engine, never from the user.
    pub fn upload(&mut self, queue: &wgpu::Queue, rgb: &[u8]) {
        assert_eq!(
            rgb.len(),
            (self.frame_w * self.frame_h * 3) as usize,
            "frame size"
        );
        for (dst, src) in self.rgba.chunks_exact_mut(4).zip(rgb.chunks_exact(3)) {
            dst[..3].copy_from_slice(src);
        }
        queue.write_texture(
            wgpu::TexelCopyTextureInfo {
                texture: &self.texture,
                mip_level: 0,
                origin: wgpu::Origin3d::ZERO,
                aspect: wgpu::TextureAspect::All,
            },
            &self.rgba,
            wgpu::TexelCopyBufferLayout {
                offset: 0,
                bytes_per_row: Some(self.frame_w * 4),
                rows_per_image: Some(self.frame_h),
            },
            self.texture.size(),
        );
    }

    /// Draws the last uploaded frame letterboxed into `area` of the pass's target.
    pub fn draw(&self, pass: &mut wgpu::RenderPass<'_>, area: Rect) {
        let r = Rect::letterbox(area, self.frame_w, self.frame_h);
        pass.set_viewport(
            r.x as f32,
            r.y as f32,
            r.width as f32,
            r.height as f32,
            0.0,
            1.0,
        );
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &self.bind_group, &[]);
        pass.draw(0..3, 0..1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letterbox_uses_the_largest_whole_scale_and_centres() {
        let area = Rect {
            x: 0,
            y: 0,
            width: 800,
            height: 600,
        };
        // 600 / 64 = 9.375 → 9×: 576 px, centred.
        assert_eq!(
            Rect::letterbox(area, 64, 64),
            Rect {
                x: 112,
                y: 12,
                width: 576,
                height: 576
            }
        );
        let tiny = Rect {
            x: 10,
            y: 10,
            width: 30,
            height: 30,
        };
        assert_eq!(Rect::letterbox(tiny, 64, 64).width, 64);
    }

    #[test]
    fn columns_cover_the_area() {
        let cols = Rect {
            x: 0,
            y: 0,
            width: 101,
            height: 50,
        }
        .columns(2);
        assert_eq!(cols[0].width + cols[1].width, 101);
        assert_eq!(cols[1].x, 50);
    }
}
