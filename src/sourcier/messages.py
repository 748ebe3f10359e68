"""The user's mistakes, said in French: a catalogue of templates keyed by error code.

Every error a user can trigger carries a ``code`` and the ``params`` its English message
quotes (see :class:`~sourcier.errors.SourcierError`); so does every skipped file
(:class:`~sourcier.types.Skipped`). :func:`say` and :func:`say_skipped` turn them into
one French sentence; anything without a French template stays in English.

    try:
        answer = ask(question)
    except SourcierError as err:
        show(say(err, "fr"))  # "La question est vide : écrivez-la avant de l’envoyer."

Templates are ``str.format`` strings. Before formatting, parameter values are put in
French: whole numbers get a narrow no-break space every three digits, ``*_bytes``
values become sizes ("1,5 Mo"), and a few names (``what``, ``name``, ``kind``) become
their French words. A narrow no-break space is put before ``: ; ? !``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .types import Skipped

log = logging.getLogger(__name__)

_REBUILD = "reconstruisez-le avec « sourcier index DOSSIER --index {path} »"

FRENCH: dict[str, str] = {
    # the question (question.check_text, question.normalise_history)
    "question_type": "{what} doit être du texte, pas {type} : écrivez-la en toutes lettres.",
    "question_empty": "{what} est vide : écrivez-la avant de l’envoyer.",
    "question_too_long": (
        "{what} fait {length} caractères, au-delà de la limite de {limit} : raccourcissez-la."
    ),
    "history_invalid": (
        "L’historique de la conversation contient un élément illisible ({item}) : "
        "donnez des messages ou des paires (question, réponse)."
    ),
    # search options (api)
    "k_invalid": (
        "Le nombre de passages ({value}) doit être un nombre entier entre 1 et 100 : corrigez-le."
    ),
    "mode_invalid": (
        "Le mode de recherche « {value} » n’existe pas : choisissez hybrid, dense ou bm25."
    ),
    # filters (retrieve.Filters)
    "filters_type": (
        "Les filtres doivent être un dictionnaire (doc_ids, sources, date_from, date_to), "
        "pas {type} : corrigez-les."
    ),
    "filters_unknown": (
        "Filtre inconnu ({names}) : les filtres possibles sont doc_ids, sources, date_from "
        "et date_to."
    ),
    "filter_list_type": (
        "Le filtre {name} doit être une liste de textes, pas {type} : donnez une liste."
    ),
    "filter_date_format": (
        "La {name} « {value} » n’a pas la forme 2011, 2011-06 ou 2011-06-06 : corrigez-la."
    ),
    "filter_date_invalid": (
        "La {name} « {value} » n’existe pas dans le calendrier : vérifiez le mois (01 à 12) "
        "et le jour."
    ),
    "filter_date_order": (
        "La date de début ({date_from}) est postérieure à la date de fin ({date_to}) : "
        "inversez-les."
    ),
    # the index (store, index, api)
    "index_not_found": (
        "Aucun index dans {path} : créez-en un avec « sourcier index DOSSIER --index {path} »."
    ),
    "index_corrupt": f"L’index {{path}} est endommagé : {_REBUILD}.",
    "index_generation_missing": (
        f"L’index {{path}} est endommagé (CURRENT désigne {{generation}}, qui n’existe pas) : "
        f"{_REBUILD}."
    ),
    "index_format": (
        f"L’index {{path}} a un format ({{found}}) que cette version ne lit pas "
        f"(format {{supported}}) : {_REBUILD}."
    ),
    "index_mismatch_model": (
        "L’index {path} a été construit avec le modèle {built}, pas {wanted} : "
        "choisissez un autre --index ou reconstruisez-le."
    ),
    "index_mismatch_settings": (
        "L’index {path} a été construit avec d’autres réglages ({fields}) : "
        "reconstruisez-le pour les changer."
    ),
    "index_old_format": (
        "L’index {path} a un format plus ancien : mettez-le à jour une fois avec "
        "« sourcier index --upgrade --index {path} » (toute construction le fait aussi)."
    ),
    "document_not_found": (
        "Le document {doc_id} n’est pas dans l’index : actualisez la liste des documents."
    ),
    "chunk_not_found": (
        "Le passage {chunk_id} n’est plus dans l’index : posez la question à nouveau."
    ),
    "doc_prefix_short": (
        "« {prefix} » est trop court pour désigner un document : donnez au moins "
        "{minimum} caractères de son identifiant (voir « sourcier documents »)."
    ),
    "doc_prefix_none": (
        "Aucun document ne correspond à « {prefix} » : voir « sourcier documents »."
    ),
    "doc_prefix_ambiguous": (
        "{count} documents correspondent à « {prefix} » : donnez un identifiant plus long."
    ),
    # building (loaders.discover, index.update_index)
    "path_not_found": "{kind} introuvable : {path} ; vérifiez le chemin.",
    "nothing_indexed": (
        "Aucun document n’a pu être indexé depuis {sources} : ajoutez des fichiers .txt, "
        ".md, .html, .pdf ou .docx lisibles."
    ),
    # why a file was not indexed (types.Skipped.code; also LoadError.code)
    "unsupported_type": (
        "type de fichier non pris en charge ({suffix}) : utilisez .txt, .md, .html, .pdf ou .docx"
    ),
    "no_extension": "fichier sans extension : renommez-le en .txt, .md, .html, .pdf ou .docx",
    "too_large": "fichier de {size_bytes}, au-delà de la limite de {limit_bytes}",
    "empty": "fichier vide",
    "no_text": "aucun texte dans le fichier",
    "binary": "fichier binaire, pas du texte",
    "not_text": "pas un fichier texte (encodage des caractères non reconnu)",
    "permission_denied": "accès refusé : vérifiez les droits du fichier",
    "unreadable": "fichier illisible",
    "reader_crashed": "le processus de lecture s’est arrêté (une bibliothèque de lecture a planté)",
    "file_not_found": "fichier introuvable",
    "is_folder": "c’est un dossier, pas un fichier",
    "not_regular": "pas un fichier ordinaire",
    "symlink_loop": "lien symbolique en boucle",
    "symlink_broken": "lien symbolique cassé (sa cible n’existe pas)",
    "too_deep": "dossier imbriqué sur plus de {depth} niveaux",
    "pdf_encrypted": "PDF chiffré ou protégé par un mot de passe : retirez la protection",
    "pdf_corrupt": "PDF endommagé ou illisible",
    "pdf_no_text": "PDF sans texte extractible",
    "docx_corrupt": "fichier .docx endommagé ou illisible",
    "odt_corrupt": "fichier .odt endommagé ou illisible",
    "pptx_corrupt": "fichier .pptx endommagé ou illisible",
    "ocr_missing": (
        "ce fichier se lit par OCR : installez Tesseract (apt install tesseract-ocr "
        "tesseract-ocr-fra), puis pip install sourcier[ocr]"
    ),
    "ocr_failed": "l’OCR a échoué sur ce fichier",
    "image_corrupt": "image endommagée ou illisible",
    "image_too_large": "image de {width}×{height} pixels, trop grande pour l’OCR",
    "image_no_text": "aucun texte trouvé dans l’image (l’OCR a lu {words} mot(s))",
    "reader_failed": "le fichier {suffix} n’a pas pu être lu",
    "duplicate": "même contenu que {other}",
    "hidden_file": (
        "fichier caché (nom commençant par un point) : nommez-le explicitement pour l’indexer"
    ),
    "hidden_folder": (
        "dossier caché (nom commençant par un point) : nommez-le explicitement pour indexer "
        "son contenu"
    ),
    "readme": "README du dossier, pas un document : nommez le fichier lui-même pour l’indexer",
    # serving (ui.access, ui.library, ui.limits)
    "exposed_write": (
        "Refus de servir sur {host} sans connexion : n’importe qui pourrait ajouter ou retirer "
        "des documents ; ajoutez --auth UTILISATEUR:MOT_DE_PASSE, --read-only ou --insecure."
    ),
    "auth_format": "--auth attend UTILISATEUR:MOT_DE_PASSE (reçu « {got} ») : corrigez-le.",
    "auth_file": "Le fichier d’identifiants {path} est illisible : vérifiez son chemin.",
    "auth_line": (
        "{path}, ligne {line} : attendu utilisateur:scrypt$… (créez-la avec "
        "« sourcier password UTILISATEUR »)."
    ),
    "auth_empty": "Le fichier d’identifiants {path} ne contient aucun utilisateur.",
    "read_only": (
        "Ce serveur est en lecture seule : l’ajout et le retrait de documents sont désactivés."
    ),
    "client_busy": (
        "{running} de vos questions sont encore en cours : attendez leur réponse avant "
        "d’en poser une autre."
    ),
    "client_rate": "Trop de questions d’un coup : attendez {seconds} s avant la suivante.",
    # the HTTP APIs and their tokens
    "chat_no_question": "Le dernier message doit être la question de l’utilisateur.",
    "no_file": "L’envoi ne contient aucun fichier (champ « files »).",
    "port_taken": (
        "Impossible d’écouter sur {host}:{port} : le port est pris ou l’adresse n’est pas "
        "celle de cette machine (choisissez-en un autre avec --port)."
    ),
    "token_file": "Le fichier des jetons {path} est illisible ou abîmé.",
    "token_name": "Un nom de jeton ne peut être vide ni contenir d’espace.",
    "token_exists": (
        "Un jeton nommé « {name} » existe déjà : révoquez-le d’abord "
        "(sourcier token revoke {name})."
    ),
    "token_unknown": "Aucun jeton ne s’appelle « {name} ».",
    # embedding on a Ray cluster (distributed)
    "ray_missing": (
        "Ray n’est pas installé : installez l’extra avec « pip install sourcier[ray] »."
    ),
    "ray_unreachable": (
        "Aucun cluster Ray joignable à {address} : démarrez-en un avec « ray start --head » "
        "ou utilisez --ray local."
    ),
    "ray_lost": (
        "{missing} passages ne sont jamais revenus du cluster Ray : relancez l’indexation."
    ),
    # settings and named parts (settings, registry)
    "setting_unknown": "Le réglage « {name} » n’existe pas : vérifiez son nom.",
    "setting_pair": "« {pair} » n’a pas la forme CLÉ=VALEUR (par exemple k=8) : corrigez-le.",
    "setting_value": "La valeur « {value} » ne convient pas au réglage {name} : corrigez-la.",
    "registry_unknown": "Aucun élément « {name} » parmi : {known}.",
    "llm_missing": (
        "La réponse générative demande un modèle de langue : donnez-en un (--llm) ou "
        "choisissez la réponse extractive."
    ),
}

_WORDS: dict[str, dict[str, str]] = {
    "what": {"question": "la question", "query": "la recherche"},
    "name": {
        "date_from": "date de début",
        "date_to": "date de fin",
        "doc_ids": "doc_ids",
        "sources": "sources",
    },
    "kind": {"file": "fichier", "folder": "dossier"},
}


def say(err: BaseException, language: str = "en") -> str:
    """The one-line message for ``err`` in ``language``.

    Args:
        err: any exception; a :class:`~sourcier.errors.SourcierError` with a ``code``
            in :data:`FRENCH` can be said in French.
        language: ``"fr"`` for French; anything else gives the English ``str(err)``.

    Returns:
        The French sentence, or ``str(err)`` (the English one) when there is no French
        template for it.
    """
    english = str(err)
    code = getattr(err, "code", None)
    params = getattr(err, "params", None)
    return _render(code, english, language, params if isinstance(params, Mapping) else {})


def say_reason(code: str | None, reason: str, language: str = "en", **params: object) -> str:
    """Why a file was skipped, in ``language`` (the English ``reason`` as fallback).

    Args:
        code: :attr:`Skipped.code <sourcier.types.Skipped.code>`.
        reason: the English reason, said when there is no template.
        language: ``"fr"`` or anything else (English).
        params: :attr:`Skipped.params <sourcier.types.Skipped.params>`.
    """
    return _render(code, reason, language, params)


def say_skipped(skipped: Skipped, language: str = "en") -> str:
    """``say_reason`` for a :class:`~sourcier.types.Skipped` entry (saying so when the
    version indexed before is kept)."""
    text = _render(skipped.code, skipped.reason, language, skipped.params)
    if not skipped.kept:
        return text
    if language == "fr":
        return text + _typeset(" ; la version indexée avant est conservée")
    return text + "; the version indexed before is kept"


def _render(code: str | None, english: str, language: str, params: Mapping[str, object]) -> str:
    if language != "fr" or code is None or code not in FRENCH:
        return english
    values = {key: _french_value(key, value) for key, value in params.items()}
    try:
        text = _typeset(FRENCH[code]).format(**values)
    except (KeyError, IndexError, ValueError):
        log.debug("the French template of %s does not fit its params %r", code, params)
        return english
    return text[:1].upper() + text[1:]


def _typeset(template: str) -> str:
    """French spacing: a narrow no-break space before ``: ; ? !``, no-break inside « »."""
    for mark in ":;?!":
        template = template.replace(f" {mark}", f"\u202f{mark}")
    return template.replace("« ", "«\u00a0").replace(" »", "\u00a0»")


def _french_value(key: str, value: object) -> object:
    if key.endswith("_bytes") and isinstance(value, int):
        return french_size(value)
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return french_number(value)
    if isinstance(value, str) and key in _WORDS:
        return _WORDS[key].get(value, value)
    return value


def french_number(n: int) -> str:
    """``12345`` as French writes it: ``12 345`` (narrow no-break space)."""
    return f"{n:,}".replace(",", "\u202f")


def french_size(n: int) -> str:
    """A byte count as French writes it: ``1,5 Mo``, ``20 Mo``, ``12 Ko``, ``300 octets``."""
    for unit, size in (("Go", 1024**3), ("Mo", 1024**2), ("Ko", 1024)):
        if n >= size:
            number = f"{round(n / size, 1):g}".replace(".", ",")
            return f"{number}\u00a0{unit}"
    return f"{french_number(n)}\u00a0octet{'s' * (n > 1)}"
