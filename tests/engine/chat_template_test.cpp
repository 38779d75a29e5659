// Real chat templates (chat_template_sources.h, copied verbatim from the models) rendered
// through render_chat_template, against prompts written by hand from each family's documented
// format: Llama 2, 3, 3.1/3.3, 3.2, Mistral v0.1, Mixtral, Mistral Nemo (tools), Qwen2,
// Qwen2.5 (tools), Qwen3 (tools, <think>), Gemma 2, Gemma 3 and Phi-3 / Phi-3.5.
#include <gtest/gtest.h>

#include <string>

#include "engine/chat_template_sources.h"
#include "mlxn/core/error.h"
#include "mlxn/engine/jinja.h"

namespace mlxn::engine::jinja {
namespace {

using namespace test_data;  // NOLINT: the templates are the subject of every test

// ---- conversations ----

constexpr const char* kChat = R"([
  {"role": "user", "content": "Hello!"},
  {"role": "assistant", "content": "Hi! How can I help?"},
  {"role": "user", "content": "What is 2+2?"}
])";

constexpr const char* kChatWithSystem = R"([
  {"role": "system", "content": "You are a helpful assistant."},
  {"role": "user", "content": "Hello!"},
  {"role": "assistant", "content": "Hi! How can I help?"},
  {"role": "user", "content": "What is 2+2?"}
])";

constexpr const char* kWeatherTools = R"([{"type": "function", "function": {
  "name": "get_weather", "description": "Get the weather",
  "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                 "required": ["city"]}}}])";

// The tool as json.dumps writes it on one line.
constexpr const char* kWeatherToolJson =
    R"({"type": "function", "function": {"name": "get_weather", "description": "Get the weather", )"
    R"("parameters": {"type": "object", "properties": {"city": {"type": "string"}}, )"
    R"("required": ["city"]}}})";

std::string render(const char* tmpl, const char* messages, bool add_generation_prompt,
                   const char* extra = "{}") {
  return render_chat_template(tmpl, Value::from_json_text(messages), add_generation_prompt,
                              Value::from_json_text(extra));
}

// The template's own raise_exception message, checked to surface as InvalidArgument.
std::string render_error(const char* tmpl, const char* messages, const char* extra = "{}") {
  try {
    render(tmpl, messages, true, extra);
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::InvalidArgument) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no error was thrown";
  return "";
}

constexpr const char* kLlamaTokens =
    R"({"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"})";
constexpr const char* kSentencePieceTokens = R"({"bos_token": "<s>", "eos_token": "</s>"})";

// ---- Llama ----

TEST(ChatTemplate, Llama2) {
  EXPECT_EQ(render(kLlama2, kChatWithSystem, true, kSentencePieceTokens),
            "<s>[INST] <<SYS>>\nYou are a helpful assistant.\n<</SYS>>\n\nHello! [/INST]"
            " Hi! How can I help? </s>"
            "<s>[INST] What is 2+2? [/INST]");
  EXPECT_EQ(render(kLlama2, kChat, false, kSentencePieceTokens),
            "<s>[INST] Hello! [/INST] Hi! How can I help? </s><s>[INST] What is 2+2? [/INST]");
  const std::string msg = render_error(
      kLlama2, R"([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}])",
      kSentencePieceTokens);
  EXPECT_NE(msg.find("Conversation roles must alternate user/assistant/user/assistant/..."),
            std::string::npos)
      << msg;
}

TEST(ChatTemplate, Llama3) {
  const std::string turns =
      "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
      "You are a helpful assistant.<|eot_id|>"
      "<|start_header_id|>user<|end_header_id|>\n\nHello!<|eot_id|>"
      "<|start_header_id|>assistant<|end_header_id|>\n\nHi! How can I help?<|eot_id|>"
      "<|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>";
  EXPECT_EQ(render(kLlama3, kChatWithSystem, true, kLlamaTokens),
            turns + "<|start_header_id|>assistant<|end_header_id|>\n\n");
  EXPECT_EQ(render(kLlama3, kChatWithSystem, false, kLlamaTokens), turns);
  // Content is trimmed.
  EXPECT_EQ(render(kLlama3, R"([{"role": "user", "content": "  hi \n"}])", false, kLlamaTokens),
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>");
}

constexpr const char* kLlama31System =
    "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
    "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n";

TEST(ChatTemplate, Llama31) {
  EXPECT_EQ(render(kLlama31, kChatWithSystem, true, kLlamaTokens),
            std::string(kLlama31System) +
                "You are a helpful assistant.<|eot_id|>"
                "<|start_header_id|>user<|end_header_id|>\n\nHello!<|eot_id|>"
                "<|start_header_id|>assistant<|end_header_id|>\n\nHi! How can I help?<|eot_id|>"
                "<|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>"
                "<|start_header_id|>assistant<|end_header_id|>\n\n");
  // Without a system message the system turn still carries the dates; date_string overrides.
  EXPECT_EQ(render(kLlama31, R"([{"role": "user", "content": "Hi"}])", false,
                   R"({"bos_token": "<|begin_of_text|>", "date_string": "01 Jan 2025"})"),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
            "Cutting Knowledge Date: December 2023\nToday Date: 01 Jan 2025\n\n<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>");
}

TEST(ChatTemplate, Llama31Tools) {
  const std::string extra =
      std::string(R"({"bos_token": "<|begin_of_text|>", "tools": )") + kWeatherTools + "}";
  const char* messages = R"([
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "tool_calls": [{"type": "function",
      "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
    {"role": "tool", "content": "22C"}
  ])";
  const std::string tool_json =
      "{\n"
      "    \"type\": \"function\",\n"
      "    \"function\": {\n"
      "        \"name\": \"get_weather\",\n"
      "        \"description\": \"Get the weather\",\n"
      "        \"parameters\": {\n"
      "            \"type\": \"object\",\n"
      "            \"properties\": {\n"
      "                \"city\": {\n"
      "                    \"type\": \"string\"\n"
      "                }\n"
      "            },\n"
      "            \"required\": [\n"
      "                \"city\"\n"
      "            ]\n"
      "        }\n"
      "    }\n"
      "}";
  EXPECT_EQ(render(kLlama31, messages, true, extra.c_str()),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
            "Environment: ipython\n"
            "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\n"
            "Given the following functions, please respond with a JSON for a function call "
            "with its proper arguments that best answers the given prompt.\n\n"
            "Respond in the format {\"name\": function name, \"parameters\": dictionary of "
            "argument name and its value}.Do not use variables.\n\n" +
                tool_json +
                "\n\nWeather in Paris?<|eot_id|>"
                "<|start_header_id|>assistant<|end_header_id|>\n\n"
                "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}<|eot_id|>"
                // A string is iterable, so the template JSON-quotes the tool output.
                "<|start_header_id|>ipython<|end_header_id|>\n\n\"22C\"<|eot_id|>"
                "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(ChatTemplate, Llama31BuiltinTools) {
  const char* messages = R"([
    {"role": "user", "content": "Search for cats"},
    {"role": "assistant", "tool_calls": [{"function": {"name": "brave_search",
      "arguments": {"query": "cats"}}}]}
  ])";
  EXPECT_EQ(render(kLlama31, messages, false,
                   R"({"bos_token": "", "builtin_tools": ["brave_search", "code_interpreter"]})"),
            "<|start_header_id|>system<|end_header_id|>\n\n"
            "Environment: ipython\nTools: brave_search\n\n"
            "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nSearch for cats<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n"
            "<|python_tag|>brave_search.call(query=\"cats\")<|eom_id|>");
}

TEST(ChatTemplate, Llama32UsesStrftimeNow) {
  // strftime_now is replaced by a fixed clock that checks the format the template asks for.
  Value extra = Value::from_json_text(kLlamaTokens);
  extra.set("strftime_now", Value::function("strftime_now", [](const CallArgs& args) {
              EXPECT_EQ(args.positional.at(0).as_string(), "%d %b %Y");
              return Value("05 Mar 2025");
            }));
  EXPECT_EQ(render_chat_template(kLlama32, Value::from_json_text(kChat), true, extra),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
            "Cutting Knowledge Date: December 2023\nToday Date: 05 Mar 2025\n\n<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHello!<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nHi! How can I help?<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  // With the real clock the date is today's, in "%d %b %Y" form (11 characters).
  const std::string out = render(kLlama32, kChat, false, kLlamaTokens);
  const std::string marker = "Today Date: ";
  const auto at = out.find(marker);
  ASSERT_NE(at, std::string::npos);
  EXPECT_EQ(out.substr(at + marker.size() + 11, 2), "\n\n") << out;
}

// ---- Mistral ----

TEST(ChatTemplate, Mistral) {
  EXPECT_EQ(render(kMistral, kChat, true, kSentencePieceTokens),
            "<s>[INST] Hello! [/INST]Hi! How can I help?</s>[INST] What is 2+2? [/INST]");
  std::string msg = render_error(kMistral, kChatWithSystem, kSentencePieceTokens);
  EXPECT_NE(msg.find("Conversation roles must alternate"), std::string::npos) << msg;
  msg = render_error(kMistral,
                     R"([{"role": "user", "content": "a"}, {"role": "tool", "content": "b"}])",
                     kSentencePieceTokens);
  EXPECT_NE(msg.find("Only user and assistant roles are supported!"), std::string::npos) << msg;
}

TEST(ChatTemplate, Mixtral) {
  EXPECT_EQ(render(kMixtral, kChatWithSystem, true, kSentencePieceTokens),
            "<s> [INST] You are a helpful assistant.\n\nHello! [/INST] Hi! How can I help?</s>"
            " [INST] What is 2+2? [/INST]");
  EXPECT_EQ(render(kMixtral, kChat, false, kSentencePieceTokens),
            "<s> [INST] Hello! [/INST] Hi! How can I help?</s> [INST] What is 2+2? [/INST]");
}

TEST(ChatTemplate, MistralNemo) {
  EXPECT_EQ(render(kMistralNemo, kChatWithSystem, true, kSentencePieceTokens),
            "<s>[INST]Hello![/INST]Hi! How can I help?</s>"
            "[INST]You are a helpful assistant.\n\nWhat is 2+2?[/INST]");
}

TEST(ChatTemplate, MistralNemoTools) {
  const std::string extra =
      std::string(R"({"bos_token": "<s>", "eos_token": "</s>", "tools": )") + kWeatherTools + "}";
  const char* messages = R"([
    {"role": "user", "content": "What's the weather in Paris?"},
    {"role": "assistant", "tool_calls": [{"id": "abc123def", "type": "function",
      "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
    {"role": "tool", "tool_call_id": "abc123def", "content": "22C"},
    {"role": "assistant", "content": "It is 22C in Paris."}
  ])";
  EXPECT_EQ(render(kMistralNemo, messages, false, extra.c_str()),
            "<s>[AVAILABLE_TOOLS][{\"type\": \"function\", \"function\": {\"name\": "
            "\"get_weather\", \"description\": \"Get the weather\", \"parameters\": {\"type\": "
            "\"object\", \"properties\": {\"city\": {\"type\": \"string\"}}, \"required\": "
            "[\"city\"]}}}][/AVAILABLE_TOOLS]"
            "[INST]What's the weather in Paris?[/INST]"
            "[TOOL_CALLS][{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}, "
            "\"id\": \"abc123def\"}]</s>"
            "[TOOL_RESULTS]{\"content\": 22C, \"call_id\": \"abc123def\"}[/TOOL_RESULTS]"
            "It is 22C in Paris.</s>");
  const char* bad_id = R"([
    {"role": "user", "content": "x"},
    {"role": "assistant", "tool_calls": [{"id": "short", "function": {"name": "f", "arguments": {}}}]}
  ])";
  const std::string msg = render_error(kMistralNemo, bad_id, extra.c_str());
  EXPECT_NE(msg.find("Tool call IDs should be alphanumeric strings with length 9!"),
            std::string::npos)
      << msg;
}

// ---- Qwen ----

constexpr const char* kChatMlTurns =
    "<|im_start|>user\nHello!<|im_end|>\n"
    "<|im_start|>assistant\nHi! How can I help?<|im_end|>\n"
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n";

TEST(ChatTemplate, Qwen2) {
  EXPECT_EQ(render(kQwen2, kChat, true),
            std::string("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n") +
                kChatMlTurns + "<|im_start|>assistant\n");
  EXPECT_EQ(
      render(kQwen2, kChatWithSystem, false),
      std::string("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n") + kChatMlTurns);
}

TEST(ChatTemplate, Qwen25) {
  EXPECT_EQ(render(kQwen25, kChat, true),
            std::string("<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a "
                        "helpful assistant.<|im_end|>\n") +
                kChatMlTurns + "<|im_start|>assistant\n");
  EXPECT_EQ(
      render(kQwen25, kChatWithSystem, false),
      std::string("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n") + kChatMlTurns);
}

std::string qwen_tools_block(const std::string& intro) {
  return "<|im_start|>system\n" + intro +
         "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
         "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n" +
         kWeatherToolJson +
         "\n</tools>\n\nFor each function call, return a json object with function name and "
         "arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n"
         "{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call>"
         "<|im_end|>\n";
}

TEST(ChatTemplate, Qwen25Tools) {
  const std::string extra = std::string(R"({"tools": )") + kWeatherTools + "}";
  const char* messages = R"([
    {"role": "user", "content": "What's the weather in Paris?"},
    {"role": "assistant", "content": "", "tool_calls": [{"type": "function",
      "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
    {"role": "tool", "content": "{\"temperature\": 22}"}
  ])";
  EXPECT_EQ(render(kQwen25, messages, true, extra.c_str()),
            qwen_tools_block("You are Qwen, created by Alibaba Cloud. You are a helpful "
                             "assistant.\n\n") +
                "<|im_start|>user\nWhat's the weather in Paris?<|im_end|>\n"
                "<|im_start|>assistant\n<tool_call>\n"
                "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n"
                "</tool_call><|im_end|>\n"
                "<|im_start|>user\n<tool_response>\n{\"temperature\": 22}\n</tool_response>"
                "<|im_end|>\n"
                "<|im_start|>assistant\n");
}

TEST(ChatTemplate, Qwen3) {
  EXPECT_EQ(render(kQwen3, kChat, true), std::string(kChatMlTurns) + "<|im_start|>assistant\n");
  EXPECT_EQ(
      render(kQwen3, kChatWithSystem, false),
      std::string("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n") + kChatMlTurns);
}

TEST(ChatTemplate, Qwen3EnableThinking) {
  EXPECT_EQ(render(kQwen3, kChat, true, R"({"enable_thinking": false})"),
            std::string(kChatMlTurns) + "<|im_start|>assistant\n<think>\n\n</think>\n\n");
  EXPECT_EQ(render(kQwen3, kChat, true, R"({"enable_thinking": true})"),
            std::string(kChatMlTurns) + "<|im_start|>assistant\n");
}

TEST(ChatTemplate, Qwen3DropsPastReasoning) {
  const char* messages = R"([
    {"role": "user", "content": "What is 2+2?"},
    {"role": "assistant", "content": "<think>\nAdd them.\n</think>\n\n4"},
    {"role": "user", "content": "And 3+3?"}
  ])";
  EXPECT_EQ(render(kQwen3, messages, true),
            "<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
            "<|im_start|>assistant\n4<|im_end|>\n"
            "<|im_start|>user\nAnd 3+3?<|im_end|>\n"
            "<|im_start|>assistant\n");
  // An answer after the last query keeps its reasoning.
  const char* last = R"([
    {"role": "user", "content": "What is 2+2?"},
    {"role": "assistant", "content": "<think>\nAdd them.\n</think>\n\n4"}
  ])";
  EXPECT_EQ(render(kQwen3, last, false),
            "<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
            "<|im_start|>assistant\n<think>\nAdd them.\n</think>\n\n4<|im_end|>\n");
}

TEST(ChatTemplate, Qwen3ToolsAndReasoning) {
  const std::string extra = std::string(R"({"tools": )") + kWeatherTools + "}";
  const char* messages = R"([
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": "<think>\nI should call the tool.\n</think>\n\nLet me check.",
     "tool_calls": [{"type": "function",
       "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
    {"role": "tool", "content": "22C"},
    {"role": "tool", "content": "sunny"}
  ])";
  EXPECT_EQ(render(kQwen3, messages, true, extra.c_str()),
            qwen_tools_block("Be brief.\n\n") +
                "<|im_start|>user\nWeather in Paris?<|im_end|>\n"
                "<|im_start|>assistant\n<think>\nI should call the tool.\n</think>\n\n"
                "Let me check.\n<tool_call>\n"
                "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n"
                "</tool_call><|im_end|>\n"
                "<|im_start|>user\n<tool_response>\n22C\n</tool_response>"
                "\n<tool_response>\nsunny\n</tool_response><|im_end|>\n"
                "<|im_start|>assistant\n");
}

// ---- Gemma ----

TEST(ChatTemplate, Gemma2) {
  EXPECT_EQ(render(kGemma2, kChat, true, R"({"bos_token": "<bos>"})"),
            "<bos><start_of_turn>user\nHello!<end_of_turn>\n"
            "<start_of_turn>model\nHi! How can I help?<end_of_turn>\n"
            "<start_of_turn>user\nWhat is 2+2?<end_of_turn>\n"
            "<start_of_turn>model\n");
  const std::string msg = render_error(kGemma2, kChatWithSystem, R"({"bos_token": "<bos>"})");
  EXPECT_NE(msg.find("System role not supported"), std::string::npos) << msg;
}

TEST(ChatTemplate, Gemma3) {
  EXPECT_EQ(render(kGemma3, kChatWithSystem, true, R"({"bos_token": "<bos>"})"),
            "<bos><start_of_turn>user\nYou are a helpful assistant.\n\nHello!<end_of_turn>\n"
            "<start_of_turn>model\nHi! How can I help?<end_of_turn>\n"
            "<start_of_turn>user\nWhat is 2+2?<end_of_turn>\n"
            "<start_of_turn>model\n");
  EXPECT_EQ(render(kGemma3, kChat, false, R"({"bos_token": "<bos>"})"),
            "<bos><start_of_turn>user\nHello!<end_of_turn>\n"
            "<start_of_turn>model\nHi! How can I help?<end_of_turn>\n"
            "<start_of_turn>user\nWhat is 2+2?<end_of_turn>\n");
}

TEST(ChatTemplate, Gemma3MultimodalContent) {
  const char* messages = R"([
    {"role": "system", "content": [{"type": "text", "text": "Describe images."}]},
    {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": " What is this? "}]}
  ])";
  EXPECT_EQ(render(kGemma3, messages, true, R"({"bos_token": "<bos>"})"),
            "<bos><start_of_turn>user\nDescribe images.\n\n<start_of_image>What is this?"
            "<end_of_turn>\n<start_of_turn>model\n");
}

// ---- Phi ----

TEST(ChatTemplate, Phi3) {
  const std::string turns =
      "<|system|>\nYou are a helpful assistant.<|end|>\n"
      "<|user|>\nHello!<|end|>\n"
      "<|assistant|>\nHi! How can I help?<|end|>\n"
      "<|user|>\nWhat is 2+2?<|end|>\n";
  const char* tokens = R"({"eos_token": "<|endoftext|>"})";
  EXPECT_EQ(render(kPhi3, kChatWithSystem, true, tokens), turns + "<|assistant|>\n");
  EXPECT_EQ(render(kPhi3, kChatWithSystem, false, tokens), turns + "<|endoftext|>");
}

TEST(ChatTemplate, Phi35SkipsAnEmptySystemMessage) {
  const char* messages =
      R"([{"role": "system", "content": ""}, {"role": "user", "content": "Hi"}])";
  EXPECT_EQ(render(kPhi35, messages, true, R"({"eos_token": "<|endoftext|>"})"),
            "<|user|>\nHi<|end|>\n<|assistant|>\n");
}

// ---- entry point ----

TEST(ChatTemplate, ParsedTemplateRendersManyConversations) {
  const Template t = parse_chat_template(kQwen2, "qwen2");
  EXPECT_EQ(t.name(), "qwen2");
  const std::string a = render_chat_template(t, Value::from_json_text(kChat), false);
  const std::string b = render_chat_template(t, Value::from_json_text(kChat), false);
  EXPECT_EQ(a, b);
  EXPECT_EQ(render_chat_template(t, Value::from_json_text("[]"), true), "<|im_start|>assistant\n");
}

TEST(ChatTemplate, ToolsAndDocumentsAreNoneUnlessGiven) {
  const char* probe =
      "{{ tools is none }} {{ documents is none }} {{ add_generation_prompt }} "
      "{{ messages|length }} {{ bos_token }}";
  EXPECT_EQ(render(probe, kChat, true, R"({"bos_token": "<s>"})"), "True True True 3 <s>");
  EXPECT_EQ(render(probe, "[]", false, R"({"tools": []})"), "False True False 0 ");
}

TEST(ChatTemplate, BadInputsAreRejected) {
  try {
    render_chat_template(kQwen2, Value::from_json_text(R"({"role": "user"})"), true);
    ADD_FAILURE() << "messages that are not a list must be rejected";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::InvalidArgument);
    EXPECT_NE(std::string(e.what()).find("messages must be a list"), std::string::npos);
  }
  try {
    render_chat_template("{% if %}", Value::from_json_text("[]"), true);
    ADD_FAILURE() << "a broken template must be rejected";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Format);
    EXPECT_NE(std::string(e.what()).find("chat_template"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace mlxn::engine::jinja
