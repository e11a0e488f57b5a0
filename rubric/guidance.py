"""The guidance store: best-practice passages in Chroma, and ``rapport ingest``.

Shipped passages live in ``guidance/*.md`` with front matter (id, title, tags, source).
Any other md/txt/html/pdf a trainer ingests (their company playbook) is chunked the same way;
its tags are inferred from the rubric's exemplars. Ingest is idempotent per file: an
unchanged file adds nothing; a changed file replaces its chunks.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import chromadb
import yaml
from chromadb.config import Settings as ChromaSettings
from langchain_chroma import Chroma
from langchain_core.documents import Document
from langchain_text_splitters import RecursiveCharacterTextSplitter

from common.settings import Settings
from rubric.embeddings import MiniLMEmbeddings

GUIDANCE_DIR = Path(__file__).resolve().parent.parent / "guidance"
COLLECTION = "rapport_guidance"
SUPPORTED = {".md", ".markdown", ".txt", ".html", ".htm", ".pdf"}
TAGS = (
    "listen",
    "validate",
    "cooperate",
    "affirm",
    "dismissive",
    "name",
    "tone",
    "calm",
    "vent",
    "empathy",
)
_FRONT = re.compile(r"\A---\s*\n(.*?)\n---\s*\n", re.S)


class GuidanceError(ValueError):
    """A guidance file is malformed; the message names the file and field."""


@dataclass(frozen=True)
class Passage:
    """A retrieved guidance chunk, ready to cite."""

    id: str
    title: str
    source: str
    excerpt: str
    tags: tuple[str, ...]
    score: float = 0.0


@dataclass
class IngestReport:
    added: dict[str, int] = field(default_factory=dict)
    replaced: dict[str, int] = field(default_factory=dict)
    unchanged: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def chunks_written(self) -> int:
        return sum(self.added.values()) + sum(self.replaced.values())


def chroma_client(settings: Settings) -> chromadb.ClientAPI:
    """A persistent client in the data dir, or an HTTP client when a Chroma server is set."""
    cs = ChromaSettings(anonymized_telemetry=False)
    if settings.chroma_host:
        return chromadb.HttpClient(
            host=settings.chroma_host, port=settings.chroma_port, settings=cs
        )
    path = settings.data_dir / "chroma"
    path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(path), settings=cs)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "doc"


def read_document(path: Path) -> str:
    """Plain text of a md/txt/html/pdf file."""
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        from pypdf import PdfReader

        return "\n\n".join(page.extract_text() or "" for page in PdfReader(str(path)).pages)
    raw = path.read_text(encoding="utf-8")
    if suffix in (".html", ".htm"):
        from bs4 import BeautifulSoup

        soup = BeautifulSoup(raw, "html.parser")
        for tag in soup(["script", "style", "nav", "footer"]):
            tag.decompose()
        return soup.get_text("\n")
    return raw


def split_front_matter(text: str, source: str) -> tuple[dict[str, Any], str]:
    m = _FRONT.match(text)
    if not m:
        return {}, text
    try:
        meta = yaml.safe_load(m.group(1)) or {}
    except yaml.YAMLError as exc:
        raise GuidanceError(f"{source}: front matter: invalid YAML: {exc}") from None
    if not isinstance(meta, dict):
        raise GuidanceError(f"{source}: front matter: expected a mapping")
    unknown = set(meta) - {"id", "title", "tags", "source"}
    if unknown:
        raise GuidanceError(f"{source}: {sorted(unknown)[0]}: unknown front-matter field")
    tags = meta.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise GuidanceError(f"{source}: tags: must be a list of strings")
    if "id" in meta and not re.fullmatch(r"[a-z0-9][a-z0-9-]{1,80}", str(meta["id"])):
        raise GuidanceError(f"{source}: id: must be a lowercase slug")
    return meta, text[m.end() :]


class GuidanceStore:
    """Guidance passages in a Chroma collection, retrieved by technique tag."""

    def __init__(self, settings: Settings, client: chromadb.ClientAPI | None = None) -> None:
        self.settings = settings
        self.client = client or chroma_client(settings)
        self.embeddings = MiniLMEmbeddings()
        self.db = Chroma(
            collection_name=COLLECTION,
            embedding_function=self.embeddings,
            client=self.client,
            collection_metadata={"hnsw:space": "cosine"},
        )
        self.splitter = RecursiveCharacterTextSplitter(
            chunk_size=900, chunk_overlap=120, separators=["\n\n", "\n", ". ", " "]
        )

    @property
    def collection(self) -> Any:
        return self.db._collection

    def count(self) -> int:
        return int(self.collection.count())

    # --- ingest ---------------------------------------------------------------------------
    def _existing_hash(self, source: str) -> str | None:
        got = self.collection.get(where={"source": source}, limit=1, include=["metadatas"])
        metas = got.get("metadatas") or []
        return str(metas[0]["file_hash"]) if metas else None

    def _chunks(self, path: Path, source: str, text: str, file_hash: str) -> list[Document]:
        meta, body = split_front_matter(text, source)
        src_key = hashlib.sha256(source.encode()).hexdigest()[:8]
        # Passage ids cite; chunk ids store. Both are unique per source file, so two files
        # named refunds.md in different folders never overwrite each other.
        pid = str(meta.get("id") or f"{_slug(path.stem)}-{src_key[:6]}")
        title = str(meta.get("title") or _first_heading(body) or path.stem.replace("-", " "))
        tags = list(meta.get("tags") or [])
        docs = []
        for n, chunk in enumerate(self.splitter.split_text(body.strip())):
            chunk_tags = tags or self._infer_tags(chunk)
            md: dict[str, Any] = {
                "passage_id": pid,
                "title": title,
                "source": source,
                "origin": str(meta.get("source") or path.name),
                "file_hash": file_hash,
                "chunk": n,
                "tags": ",".join(chunk_tags),
            }
            for t in chunk_tags:
                md[f"tag_{t}"] = True
            docs.append(Document(page_content=chunk, metadata=md, id=f"{src_key}:{pid}#{n}"))
        return docs

    def _infer_tags(self, chunk: str) -> list[str]:
        from rubric.classifier import infer_tags

        return infer_tags(chunk)

    def ingest(
        self,
        paths: Iterable[Path],
        progress: Callable[[str], None] | None = None,
        root: Path | None = None,
    ) -> IngestReport:
        report = IngestReport()
        files: list[Path] = []
        for p in paths:
            if p.is_dir():
                files.extend(sorted(f for f in p.rglob("*") if f.is_file()))
            else:
                files.append(p)
        for f in files:
            source = _source_key(f, root)
            if progress:
                progress(source)
            if f.suffix.lower() not in SUPPORTED:
                report.skipped[source] = f"unsupported file type '{f.suffix or '(none)'}'"
                continue
            try:
                text = read_document(f)
            except (OSError, UnicodeDecodeError, ValueError) as exc:
                report.skipped[source] = f"unreadable: {exc}"
                continue
            if not text.strip():
                report.skipped[source] = "no text found"
                continue
            file_hash = hashlib.sha256(text.encode()).hexdigest()[:16]
            old = self._existing_hash(source)
            if old == file_hash:
                report.unchanged.append(source)
                continue
            try:
                docs = self._chunks(f, source, text, file_hash)
            except GuidanceError as exc:
                report.errors.append(str(exc))
                continue
            if old is not None:
                self.collection.delete(where={"source": source})
            self.db.add_documents(docs, ids=[d.id for d in docs])
            (report.replaced if old is not None else report.added)[source] = len(docs)
        return report

    # --- retrieval ------------------------------------------------------------------------
    def search(self, query: str | list[float], tag: str | None = None, k: int = 3) -> list[Passage]:
        vec = self.embeddings.embed_query(query) if isinstance(query, str) else query
        where = {f"tag_{tag}": True} if tag else None
        res = self.collection.query(
            query_embeddings=[vec],
            n_results=k,
            where=where,
            include=["documents", "metadatas", "distances"],
        )
        out = []
        for doc, md, dist in zip(
            res["documents"][0], res["metadatas"][0], res["distances"][0], strict=True
        ):
            out.append(
                Passage(
                    id=str(md["passage_id"]),
                    title=str(md["title"]),
                    source=str(md["source"]),
                    excerpt=doc,
                    tags=tuple(t for t in str(md.get("tags", "")).split(",") if t),
                    score=round(1.0 - float(dist), 4),
                )
            )
        return out

    def get_passage(self, passage_id: str) -> Passage | None:
        got = self.collection.get(
            where={"passage_id": passage_id}, include=["documents", "metadatas"]
        )
        if not got["ids"]:
            return None
        md = got["metadatas"][0]
        return Passage(
            id=passage_id,
            title=str(md["title"]),
            source=str(md["source"]),
            excerpt=got["documents"][0],
            tags=tuple(t for t in str(md.get("tags", "")).split(",") if t),
        )


def _first_heading(text: str) -> str | None:
    m = re.search(r"^#{1,3}\s+(.+)$", text, re.M)
    return m.group(1).strip() if m else None


def _source_key(path: Path, root: Path | None) -> str:
    """Shipped files are keyed relative to the repo, so the key is the same on every machine."""
    resolved = path.resolve()
    base = root or GUIDANCE_DIR.parent
    try:
        return str(resolved.relative_to(base))
    except ValueError:
        return str(resolved)
