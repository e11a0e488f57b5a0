"""The Persona Studio tab: its layout (:func:`studio_layout`) and its events
(:func:`wire_studio`), onto :class:`web.studio_handlers.StudioHandlers`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from web.formatting import archetype_choices, dataframe, difficulty_choices
from web.persona_form import FORM_FIELDS, FORM_SECTIONS, FormField, section_rows
from web.studio_handlers import EditorView, Published, Saved, StudioHandlers
from web.studio_view import LIBRARY_HEADERS, VERSION_HEADERS


def form_input(f: FormField) -> Any:
    """The Studio editor's input for one persona field, with its schema help text."""
    common: dict[str, Any] = {"label": f.label, "info": f.help, "elem_id": f.elem_id}
    if f.kind == "choice":
        return gr.Dropdown(choices=list(f.choices), value=None, **common)
    if f.kind in ("int", "float"):
        return gr.Number(value=None, **common)
    return gr.Textbox(lines=1 if f.kind == "text" else 3, **common)


@dataclass
class StudioLayout:
    """The Studio tab's components, by name (``form`` holds the field inputs in
    ``FORM_FIELDS`` order)."""

    tab: Any
    form: list[Any]
    arch: Any
    archive: Any
    archived: Any
    base: Any
    check: Any
    check_btn: Any
    clone: Any
    diff: Any
    export: Any
    export_btn: Any
    id: Any
    import_file: Any
    import_btn: Any
    new: Any
    new_id: Any
    note: Any
    pchat: Any
    pick: Any
    pmsg: Any
    problems: Any
    psend: Any
    pstart: Any
    pstatus: Any
    ptoken: Any
    publish: Any
    reason: Any
    restore: Any
    save: Any
    search: Any
    status: Any
    table: Any
    version: Any
    versions: Any
    yaml: Any

    @property
    def lib_in(self) -> list[Any]:
        """What filters the library table."""
        return [self.search, self.arch, self.diff, self.archived]

    @property
    def lib_out(self) -> list[Any]:
        return [self.table, self.pick]

    @property
    def editor_out(self) -> list[Any]:
        """What every handler that opens a persona in the editor fills (:class:`EditorView`)."""
        return list(
            EditorView(
                id=self.id,
                base=self.base,
                form=self.form,
                yaml=self.yaml,
                problems=self.problems,
                versions=self.versions,
                version=self.version,
                status=self.status,
                check=self.check,
                publish=self.publish,
            ).outputs()
        )


def studio_layout() -> StudioLayout:
    """Lay out the Studio tab (call inside the app's ``gr.Blocks``); hidden until a trainer
    signs in."""
    with gr.Tab("Persona Studio", id="studio", visible=False) as studio_tab:
        with gr.Row():
            st_search = gr.Textbox(label="Search", elem_id="studio-search", scale=2)
            st_arch = gr.Dropdown(
                choices=archetype_choices(), value="", label="Type", elem_id="studio-archetype"
            )
            st_diff = gr.Dropdown(
                choices=difficulty_choices(),
                value="",
                label="Difficulty",
                elem_id="studio-difficulty",
            )
            st_archived = gr.Checkbox(label="Show archived", elem_id="studio-archived")
        st_table = gr.Dataframe(
            value=dataframe([], LIBRARY_HEADERS),
            headers=LIBRARY_HEADERS,
            interactive=False,
            elem_id="studio-library",
            label="Library",
            max_height=300,
        )
        with gr.Row():
            st_pick = gr.Dropdown(
                choices=[],
                label="Open",
                elem_id="studio-pick",
                allow_custom_value=True,
                scale=2,
            )
            st_new_id = gr.Textbox(
                label="New id (for New, Clone and Import)",
                elem_id="studio-new-id",
                placeholder="e.g. irate_parcel_delay",
                scale=2,
            )
            st_new = gr.Button("New", elem_id="studio-new", scale=0)
            st_clone = gr.Button("Clone", elem_id="studio-clone", scale=0)
            st_archive = gr.Button("Archive", elem_id="studio-archive", scale=0, variant="stop")
        st_status = gr.HTML("", elem_id="studio-status")
        st_base = gr.State(None)
        with gr.Row():
            with gr.Column(scale=3):
                st_id = gr.Textbox(label="Persona id", elem_id="studio-id", interactive=False)
                fields: dict[str, Any] = {}
                for heading, paths, is_open in FORM_SECTIONS:
                    with gr.Accordion(heading, open=is_open):
                        for row in section_rows(paths):
                            with gr.Row():
                                for f in row:
                                    fields[f.path] = form_input(f)
                form = [fields[f.path] for f in FORM_FIELDS]
            with gr.Column(scale=2):
                st_yaml = gr.Code(
                    language="yaml",
                    label="YAML (kept in sync with the form)",
                    elem_id="studio-yaml",
                    interactive=True,
                    lines=30,
                )
                st_problems = gr.HTML("", elem_id="studio-problems")
        with gr.Row():
            st_note = gr.Textbox(label="Note for this version", elem_id="studio-note", scale=3)
            st_save = gr.Button("Save draft", variant="primary", elem_id="studio-save", scale=1)
        with gr.Accordion("Preview: chat with this text", open=True):
            st_pstart = gr.Button("Start preview", elem_id="studio-preview-start")
            st_pchat = gr.Chatbot(label="Preview", elem_id="studio-preview-chat", height=280)
            with gr.Row():
                st_pmsg = gr.Textbox(
                    show_label=False,
                    placeholder="Reply as the agent…",
                    elem_id="studio-preview-msg",
                    scale=5,
                )
                st_psend = gr.Button("Send", elem_id="studio-preview-send", scale=1)
            st_pstatus = gr.HTML("", elem_id="studio-preview-status")
            st_ptoken = gr.State("")
        with gr.Row():
            st_check_btn = gr.Button("Run probe check", elem_id="studio-check")
        st_check = gr.HTML("", elem_id="studio-check-result")
        with gr.Row():
            st_version = gr.Dropdown(choices=[], label="Version", elem_id="studio-version", scale=2)
            st_reason = gr.Textbox(
                label="Override reason (to publish without a passed check)",
                elem_id="studio-override",
                scale=3,
            )
            st_publish = gr.Button(
                "Publish", variant="primary", elem_id="studio-publish", interactive=False
            )
            st_restore = gr.Button("Restore", elem_id="studio-restore")
        st_versions = gr.Dataframe(
            value=dataframe([], VERSION_HEADERS),
            headers=VERSION_HEADERS,
            interactive=False,
            elem_id="studio-versions",
            label="Versions (newest first)",
        )
        with gr.Row():
            st_import = gr.File(
                label="Import YAML",
                file_types=[".yaml", ".yml"],
                type="filepath",
                elem_id="studio-import-file",
            )
            with gr.Column():
                st_import_btn = gr.Button("Import as new id", elem_id="studio-import")
                st_export_btn = gr.Button("Export YAML", elem_id="studio-export")
            st_export = gr.File(
                label="Exported YAML", elem_id="studio-export-file", interactive=False
            )
    return StudioLayout(
        tab=studio_tab,
        form=form,
        arch=st_arch,
        archive=st_archive,
        archived=st_archived,
        base=st_base,
        check=st_check,
        check_btn=st_check_btn,
        clone=st_clone,
        diff=st_diff,
        export=st_export,
        export_btn=st_export_btn,
        id=st_id,
        import_file=st_import,
        import_btn=st_import_btn,
        new=st_new,
        new_id=st_new_id,
        note=st_note,
        pchat=st_pchat,
        pick=st_pick,
        pmsg=st_pmsg,
        problems=st_problems,
        psend=st_psend,
        pstart=st_pstart,
        pstatus=st_pstatus,
        ptoken=st_ptoken,
        publish=st_publish,
        reason=st_reason,
        restore=st_restore,
        save=st_save,
        search=st_search,
        status=st_status,
        table=st_table,
        version=st_version,
        versions=st_versions,
        yaml=st_yaml,
    )


def wire_studio(studio: StudioHandlers, ui: StudioLayout, picker: Any, assign_persona: Any) -> None:
    """The Studio's events; publishing also refreshes the Practice ``picker`` and the
    assignment form's ``assign_persona``. The Gradio API names stay as they were."""
    lib_in, lib_out, editor_out = ui.lib_in, ui.lib_out, ui.editor_out

    def relist(event: Any) -> None:
        event.then(studio.studio_list, lib_in, lib_out)

    ui.tab.select(studio.studio_list, lib_in, lib_out, api_name="studio_list")
    gr.on(
        [ui.search.submit, ui.arch.input, ui.diff.input, ui.archived.input],
        studio.studio_list,
        lib_in,
        lib_out,
    )
    ui.pick.input(studio.studio_open, ui.pick, editor_out, api_name="studio_open")
    ui.new.click(studio.studio_new, ui.new_id, editor_out, api_name="studio_new")
    relist(
        ui.clone.click(studio.studio_clone, [ui.id, ui.new_id], editor_out, api_name="studio_clone")
    )
    relist(
        ui.archive.click(
            studio.studio_archive, ui.id, [ui.status, picker], api_name="studio_archive"
        )
    )
    sync: dict[str, Any] = {
        "concurrency_limit": 1,
        "concurrency_id": "studio-sync",
        "trigger_mode": "always_last",
    }
    gr.on(
        [c.input for c in ui.form],
        studio.studio_form_to_yaml,
        [ui.id, *ui.form],
        [ui.yaml, ui.problems],
        api_name="studio_form_to_yaml",
        show_progress="hidden",
        **sync,
    )
    ui.yaml.input(
        studio.studio_yaml_to_form,
        [ui.id, ui.yaml],
        [*ui.form, ui.problems],
        api_name="studio_yaml_to_form",
        show_progress="hidden",
        **sync,
    )
    saved = Saved(
        base=ui.base,
        status=ui.status,
        versions=ui.versions,
        version=ui.version,
        problems=ui.problems,
        publish=ui.publish,
    )
    relist(
        ui.save.click(
            studio.studio_save,
            [ui.id, ui.yaml, ui.base, ui.note, ui.reason],
            list(saved),
            api_name="studio_save",
        )
    )
    ui.pstart.click(
        studio.studio_preview_start,
        [ui.id, ui.yaml],
        [ui.pchat, ui.ptoken, ui.pstatus],
        api_name="studio_preview_start",
    )
    preview_send: dict[str, Any] = {
        "fn": studio.studio_preview_send,
        "inputs": [ui.pmsg, ui.pchat, ui.ptoken],
        "outputs": [ui.pchat, ui.pmsg, ui.pstatus],
    }
    ui.pmsg.submit(**preview_send)
    ui.psend.click(**preview_send, api_name="studio_preview_send")
    ui.check_btn.click(
        studio.studio_check,
        [ui.id, ui.yaml, ui.version, ui.reason],
        [ui.check, ui.publish, ui.status],
        api_name="studio_check",
    )
    gr.on(
        [ui.reason.input, ui.version.input],
        studio.studio_publish_state,
        [ui.id, ui.version, ui.reason],
        ui.publish,
        api_name="studio_publish_state",
        show_progress="hidden",
    )
    published = Published(
        status=ui.status,
        versions=ui.versions,
        version=ui.version,
        publish=ui.publish,
        picker=picker,
        assign_persona=assign_persona,
    )
    relist(
        ui.publish.click(
            studio.studio_publish,
            [ui.id, ui.version, ui.reason],
            list(published),
            api_name="studio_publish",
        )
    )
    relist(
        ui.restore.click(
            studio.studio_restore, [ui.id, ui.version], editor_out, api_name="studio_restore"
        )
    )
    relist(
        ui.import_btn.click(
            studio.studio_import, [ui.import_file, ui.new_id], editor_out, api_name="studio_import"
        )
    )
    ui.export_btn.click(
        studio.studio_export, [ui.id, ui.version], ui.export, api_name="studio_export"
    )
