"""The Persona Studio tab: its layout (:func:`studio_layout`) and its events
(:func:`wire_studio`), onto :class:`web.studio_handlers.StudioHandlers`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from web.formatting import archetype_choices, dataframe, difficulty_choices
from web.persona_form import FORM_FIELDS, FORM_SECTIONS, FormField, section_rows
from web.studio_handlers import StudioHandlers
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
        """What every handler that opens a persona in the editor fills, in this order."""
        return [
            self.id,
            self.base,
            *self.form,
            self.yaml,
            self.problems,
            self.versions,
            self.version,
            self.status,
            self.check,
            self.publish,
        ]


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
    form = ui.form
    studio_tab = ui.tab
    st_arch = ui.arch
    st_archive = ui.archive
    st_archived = ui.archived
    st_base = ui.base
    st_check = ui.check
    st_check_btn = ui.check_btn
    st_clone = ui.clone
    st_diff = ui.diff
    st_export = ui.export
    st_export_btn = ui.export_btn
    st_id = ui.id
    st_import = ui.import_file
    st_import_btn = ui.import_btn
    st_new = ui.new
    st_new_id = ui.new_id
    st_note = ui.note
    st_pchat = ui.pchat
    st_pick = ui.pick
    st_pmsg = ui.pmsg
    st_problems = ui.problems
    st_psend = ui.psend
    st_pstart = ui.pstart
    st_pstatus = ui.pstatus
    st_ptoken = ui.ptoken
    st_publish = ui.publish
    st_reason = ui.reason
    st_restore = ui.restore
    st_save = ui.save
    st_search = ui.search
    st_status = ui.status
    st_table = ui.table
    st_version = ui.version
    st_versions = ui.versions
    st_yaml = ui.yaml
    lib_in = [st_search, st_arch, st_diff, st_archived]
    lib_out = [st_table, st_pick]
    editor_out = [
        st_id,
        st_base,
        *form,
        st_yaml,
        st_problems,
        st_versions,
        st_version,
        st_status,
        st_check,
        st_publish,
    ]
    assert len(editor_out) == studio.n_editor
    studio_tab.select(studio.studio_list, lib_in, lib_out, api_name="studio_list")
    gr.on(
        [st_search.submit, st_arch.input, st_diff.input, st_archived.input],
        studio.studio_list,
        lib_in,
        lib_out,
    )
    st_pick.input(studio.studio_open, st_pick, editor_out, api_name="studio_open")
    st_new.click(studio.studio_new, st_new_id, editor_out, api_name="studio_new")
    st_clone.click(
        studio.studio_clone, [st_id, st_new_id], editor_out, api_name="studio_clone"
    ).then(studio.studio_list, lib_in, lib_out)
    st_archive.click(
        studio.studio_archive, st_id, [st_status, picker], api_name="studio_archive"
    ).then(studio.studio_list, lib_in, lib_out)
    sync: dict[str, Any] = {
        "concurrency_limit": 1,
        "concurrency_id": "studio-sync",
        "trigger_mode": "always_last",
    }
    gr.on(
        [c.input for c in form],
        studio.studio_form_to_yaml,
        [st_id, *form],
        [st_yaml, st_problems],
        api_name="studio_form_to_yaml",
        show_progress="hidden",
        **sync,
    )
    st_yaml.input(
        studio.studio_yaml_to_form,
        [st_id, st_yaml],
        [*form, st_problems],
        api_name="studio_yaml_to_form",
        show_progress="hidden",
        **sync,
    )
    st_save.click(
        studio.studio_save,
        [st_id, st_yaml, st_base, st_note, st_reason],
        [st_base, st_status, st_versions, st_version, st_problems, st_publish],
        api_name="studio_save",
    ).then(studio.studio_list, lib_in, lib_out)
    st_pstart.click(
        studio.studio_preview_start,
        [st_id, st_yaml],
        [st_pchat, st_ptoken, st_pstatus],
        api_name="studio_preview_start",
    )
    preview_send: dict[str, Any] = {
        "fn": studio.studio_preview_send,
        "inputs": [st_pmsg, st_pchat, st_ptoken],
        "outputs": [st_pchat, st_pmsg, st_pstatus],
    }
    st_pmsg.submit(**preview_send)
    st_psend.click(**preview_send, api_name="studio_preview_send")
    st_check_btn.click(
        studio.studio_check,
        [st_id, st_yaml, st_version, st_reason],
        [st_check, st_publish, st_status],
        api_name="studio_check",
    )
    gr.on(
        [st_reason.input, st_version.input],
        studio.studio_publish_state,
        [st_id, st_version, st_reason],
        st_publish,
        api_name="studio_publish_state",
        show_progress="hidden",
    )
    st_publish.click(
        studio.studio_publish,
        [st_id, st_version, st_reason],
        [st_status, st_versions, st_version, st_publish, picker, assign_persona],
        api_name="studio_publish",
    ).then(studio.studio_list, lib_in, lib_out)
    st_restore.click(
        studio.studio_restore, [st_id, st_version], editor_out, api_name="studio_restore"
    ).then(studio.studio_list, lib_in, lib_out)
    st_import_btn.click(
        studio.studio_import, [st_import, st_new_id], editor_out, api_name="studio_import"
    ).then(studio.studio_list, lib_in, lib_out)
    st_export_btn.click(
        studio.studio_export, [st_id, st_version], st_export, api_name="studio_export"
    )
