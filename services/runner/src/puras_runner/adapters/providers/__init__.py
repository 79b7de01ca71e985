"""Model providers behind the ``ModelClient`` port, through the official SDKs:
Anthropic Messages (``anthropic``) and OpenAI Chat Completions (``openai``; also Gemini's
OpenAI-compatible endpoint and local servers such as vLLM, Ollama, llama.cpp)."""

from puras_runner.adapters.providers.anthropic_messages import AnthropicMessagesClient
from puras_runner.adapters.providers.openai_chat import OpenAIChatClient
from puras_runner.adapters.providers.sdk_clients import (
    NO_KEY_PLACEHOLDER,
    ProviderEndpoint,
    SdkModelClients,
)
from puras_runner.adapters.providers.tool_args import RAW_ARGUMENTS_KEY

__all__ = [
    "NO_KEY_PLACEHOLDER",
    "RAW_ARGUMENTS_KEY",
    "AnthropicMessagesClient",
    "OpenAIChatClient",
    "ProviderEndpoint",
    "SdkModelClients",
]
