// Template: the public face of the Jinja engine (parse once, render many times), and the
// chat-template entry point that sets up the context the way transformers'
// apply_chat_template does.
#include "engine/jinja_ast.h"
#include "engine/jinja_eval.h"
#include "engine/jinja_parser.h"
#include "mlxn/core/error.h"
#include "mlxn/engine/jinja.h"

namespace mlxn::engine::jinja {

Template::Template(std::shared_ptr<const detail::Program> program) : program_(std::move(program)) {}

Template Template::parse(std::string_view source, std::string_view name, const Options& options) {
  return Template(detail::parse_program(source, std::string(name), options));
}

std::string Template::render(const Value& context) const {
  try {
    return detail::render_program(*program_, context);
  } catch (const detail::RenderError& e) {
    std::string where = "template '" + program_->name + "'";
    if (e.line > 0) where += " line " + std::to_string(e.line);
    throw Error(ErrorKind::InvalidArgument, where + ": " + e.what());
  }
}

const std::string& Template::name() const {
  return program_->name;
}

Template parse_chat_template(std::string_view source, std::string_view name) {
  Options options;
  options.trim_blocks = true;
  options.lstrip_blocks = true;
  return Template::parse(source, name, options);
}

std::string render_chat_template(const Template& chat_template, const Value& messages,
                                 bool add_generation_prompt, const Value& extra) {
  if (!messages.is_array()) {
    throw Error(ErrorKind::InvalidArgument, "chat template '" + chat_template.name() +
                                                "': messages must be a list, not " +
                                                messages.type_name());
  }
  if (!extra.is_undefined() && !extra.is_object()) {
    throw Error(ErrorKind::InvalidArgument, "chat template '" + chat_template.name() +
                                                "': extra variables must be a dict, not " +
                                                extra.type_name());
  }
  // transformers passes tools and documents explicitly (None when absent), then the special
  // tokens and any caller kwargs; messages and add_generation_prompt are ours to set.
  Value context = Value::object();
  context.set("tools", Value::none());
  context.set("documents", Value::none());
  if (extra.is_object()) {
    for (const auto& [key, value] : extra.as_object()) context.set(key, value);
  }
  context.set("messages", messages);
  context.set("add_generation_prompt", Value(add_generation_prompt));
  return chat_template.render(context);
}

std::string render_chat_template(std::string_view template_source, const Value& messages,
                                 bool add_generation_prompt, const Value& extra) {
  return render_chat_template(parse_chat_template(template_source), messages, add_generation_prompt,
                              extra);
}

}  // namespace mlxn::engine::jinja
