#include "model/model.h"

namespace orcd::model {

Model describe_model(std::shared_ptr<const gguf::File> file) {
    Model m;
    m.config = load_config(*file);
    m.weights = resolve_weights(*file, m.config);
    m.recipe = make_recipe(m.config, m.weights);
    m.file = std::move(file);
    return m;
}

Model open_model(const std::filesystem::path& path) {
    return describe_model(std::make_shared<const gguf::File>(gguf::File::open(path)));
}

}  // namespace orcd::model
