//! PowerPoint decks (pptx): each slide in presentation order under a `## Slide N: title`
//! heading, its text frames' paragraphs as lines, tables as `| a | b |` rows, then the speaker
//! notes. Field placeholders (slide number, date) are left out.

use std::collections::HashMap;

use super::{
    ExtractError, Format,
    ooxml::{self, Node, Package},
};

pub(super) fn text(bytes: &[u8]) -> Result<String, ExtractError> {
    let mut package = Package::open(Format::Pptx, bytes)?;
    let slides = slide_parts(&mut package)?;
    let mut out = String::new();
    for (index, slide) in slides.iter().enumerate() {
        let Some(xml) = package.part(slide)? else {
            continue;
        };
        let content = read_frames(&xml)?;
        let heading = match content.title.as_deref() {
            Some(title) => format!("## Slide {}: {title}", index + 1),
            None => format!("## Slide {}", index + 1),
        };
        out.push_str(&heading);
        out.push_str("\n\n");
        out.push_str(&content.body);
        out.push('\n');
        if let Some(notes) = notes_of(&mut package, slide)? {
            out.push_str("\nNotes:\n");
            out.push_str(&notes);
            out.push('\n');
        }
        out.push('\n');
    }
    Ok(ooxml::tidy(&out))
}

/// Slide part names in the order the deck shows them.
fn slide_parts(package: &mut Package<'_>) -> Result<Vec<String>, ExtractError> {
    let mut presentation = "ppt/presentation.xml".to_owned();
    if let Some(rels) = package.part("_rels/.rels")?
        && let Some((_, _, target)) = ooxml::relationships(Format::Pptx, &rels)?
            .into_iter()
            .find(|(_, kind, _)| kind.ends_with("/officeDocument"))
    {
        presentation = ooxml::resolve_target("", &target);
    }
    let (folder, file) = presentation
        .rsplit_once('/')
        .unwrap_or(("", presentation.as_str()));
    let rels_name = format!("{folder}/_rels/{file}.rels");
    let targets: HashMap<String, String> = match package.part(&rels_name)? {
        Some(rels) => ooxml::relationships(Format::Pptx, &rels)?
            .into_iter()
            .map(|(id, _, target)| (id, ooxml::resolve_target(folder, &target)))
            .collect(),
        None => HashMap::new(),
    };
    let mut ordered = Vec::new();
    if let Some(xml) = package.part(&presentation)? {
        ooxml::walk(Format::Pptx, &xml, |node| {
            if let Node::Start {
                name: "sldId",
                element,
                ..
            } = node
                && let Some(target) = ooxml::attr(element, "id")
                    .and_then(|_| r_id(element))
                    .and_then(|id| targets.get(&id))
            {
                ordered.push(target.clone());
            }
        })?;
    }
    if ordered.is_empty() {
        // No usable presentation part: fall back to the slide files in numeric order.
        let mut numbered: Vec<(u32, String)> = package
            .names()
            .into_iter()
            .filter_map(|name| {
                let number = name
                    .strip_prefix("ppt/slides/slide")?
                    .strip_suffix(".xml")?
                    .parse()
                    .ok()?;
                Some((number, name))
            })
            .collect();
        numbered.sort();
        ordered = numbered.into_iter().map(|(_, name)| name).collect();
    }
    Ok(ordered)
}

/// The `r:id` attribute (the plain `id` is the slide's numeric id).
fn r_id(element: &quick_xml::events::BytesStart<'_>) -> Option<String> {
    element.attributes().flatten().find_map(|attribute| {
        let key: &str = attribute.key.into_inner();
        (key.ends_with(":id") && key != "id")
            .then(|| {
                attribute
                    .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                    .ok()
                    .map(|v| v.into_owned())
            })
            .flatten()
    })
}

/// The speaker notes of `slide`, if it has any with text.
fn notes_of(package: &mut Package<'_>, slide: &str) -> Result<Option<String>, ExtractError> {
    let (folder, file) = slide.rsplit_once('/').unwrap_or(("", slide));
    let Some(rels) = package.part(&format!("{folder}/_rels/{file}.rels"))? else {
        return Ok(None);
    };
    let Some(notes) = ooxml::relationships(Format::Pptx, &rels)?
        .into_iter()
        .find(|(_, kind, _)| kind.ends_with("/notesSlide"))
        .map(|(_, _, target)| ooxml::resolve_target(folder, &target))
    else {
        return Ok(None);
    };
    let Some(xml) = package.part(&notes)? else {
        return Ok(None);
    };
    let content = read_frames(&xml)?;
    // A notes page also holds the slide image placeholder (no text) and the body with the notes.
    let text = content.body.trim();
    Ok((!text.is_empty()).then(|| text.to_owned()))
}

#[derive(Default)]
struct Frames {
    title: Option<String>,
    body: String,
}

/// The text of one slide or notes part.
fn read_frames(xml: &str) -> Result<Frames, ExtractError> {
    let mut frames = Frames::default();
    let mut paragraph: Option<String> = None;
    let mut in_text = false;
    let mut placeholder = String::new();
    let mut skipping = 0usize;
    let mut row: Option<Vec<String>> = None;
    let mut cell: Option<String> = None;
    ooxml::walk(Format::Pptx, xml, |node| {
        if skipping > 0 {
            match node {
                Node::Start {
                    name: "Fallback" | "fld",
                    empty: false,
                    ..
                } => skipping += 1,
                Node::End {
                    name: "Fallback" | "fld",
                } => skipping -= 1,
                _ => {}
            }
            return;
        }
        match node {
            Node::Start {
                name,
                element,
                empty,
            } => match name {
                "Fallback" | "fld" if !empty => skipping = 1,
                "sp" => placeholder.clear(),
                "ph" => placeholder = ooxml::attr(element, "type").unwrap_or_else(|| "body".into()),
                "p" => paragraph = Some(String::new()),
                "t" => in_text = true,
                "br" => {
                    if let Some(p) = paragraph.as_mut() {
                        p.push('\n');
                    }
                }
                "tr" => row = Some(Vec::new()),
                "tc" => cell = Some(String::new()),
                _ => {}
            },
            Node::End { name } => match name {
                "t" => in_text = false,
                "p" => {
                    let text = paragraph.take().unwrap_or_default();
                    let text = text.trim();
                    if text.is_empty() {
                        return;
                    }
                    if let Some(cell) = cell.as_mut() {
                        if !cell.is_empty() {
                            cell.push(' ');
                        }
                        cell.push_str(text);
                    } else if matches!(placeholder.as_str(), "title" | "ctrTitle")
                        && frames.title.is_none()
                    {
                        frames.title = Some(text.replace('\n', " "));
                    } else if !matches!(placeholder.as_str(), "sldImg" | "sldNum" | "dt") {
                        frames.body.push_str(text);
                        frames.body.push('\n');
                    }
                }
                "tc" => {
                    let text = cell.take().unwrap_or_default();
                    row.get_or_insert_with(Vec::new)
                        .push(text.replace('|', "\\|"));
                }
                "tr" => {
                    if let Some(cells) = row.take() {
                        frames
                            .body
                            .push_str(&format!("| {} |\n", cells.join(" | ")));
                    }
                }
                "sp" => placeholder.clear(),
                _ => {}
            },
            Node::Text(text) => {
                if in_text && let Some(p) = paragraph.as_mut() {
                    p.push_str(&text);
                }
            }
        }
    })?;
    Ok(frames)
}
